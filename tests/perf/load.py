"""Request rates and latencies from oha (a Rust HTTP load generator, installed by
tests/perf/compare.sh), read from its JSON summary."""

import json
import subprocess


def oha(binary, url, clients, seconds):
    """{'rps', 'p50_ms', 'mean_ms', 'statuses'} for GET url, `clients` kept-alive
    connections for `seconds`; an error when any answer was not 200."""
    result = subprocess.run(
        [binary, "-z", f"{seconds}s", "-c", str(clients), "--no-tui", "--output-format", "json", url],
        check=True,
        capture_output=True,
        text=True,
    )
    out = json.loads(result.stdout)
    statuses = out.get("statusCodeDistribution", {})
    if set(statuses) != {"200"}:
        raise RuntimeError(f"oha on {url}: answers {statuses}, errors {out.get('errorDistribution')}")
    return {
        "rps": out["summary"]["requestsPerSec"],
        "p50_ms": out["latencyPercentiles"]["p50"] * 1000,
        "mean_ms": out["summary"]["average"] * 1000,
        "statuses": statuses,
    }
