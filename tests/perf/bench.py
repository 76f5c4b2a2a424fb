"""The comparison bench's driver, run by tests/perf/compare.sh (which installs the tools,
starts both Ironics and cleans up): our daemon, the Python ironic-inspector and Ironic's
built-in inspection side by side on one machine, then our daemon with its firewall as
Ironic grows. Prints one `metric=` line per measure and a table of the targets.

Settings come from the environment compare.sh sets (PERF_*)."""

import os
import signal
import socket
import sys
import time

import daemons
import floor
import load
import scale
import scenarios
from client import Http
from fleet import Fleet
from report import Report

FULL = {
    "nodes": 200,
    "in_flight": 32,
    "builtin_in_flight": 16,
    "rules": 50,
    "oha_seconds": 10,
    "scale": {"nodes": 50, "ports": 10000, "on_introspection": 1000},
}
QUICK = {
    "nodes": 20,
    "in_flight": 32,
    "builtin_in_flight": 16,
    "rules": 50,
    "oha_seconds": 2,
    "scale": {"nodes": 10, "ports": 1000, "on_introspection": 100},
}
# Memory is read after the daemon has settled this long.
SETTLE_S = 2


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def step(text):
    print(f"-- {text}", flush=True)


def measure_inspector(cfg, env, daemon, fleet_number):
    """Everything the bench measures of one inspector; a dict of figures."""
    ironic = Http(env["PERF_IRONIC_URL"])
    log = env["PERF_IRONIC_LOG"]
    out = {}
    step(f"{daemon.name}: starting")
    out["start_s"] = daemon.start()
    time.sleep(SETTLE_S)
    out["rss_idle_mib"] = daemon.rss_mib()
    inspector = Http(daemon.url)
    fleet = Fleet(ironic, daemon.name, fleet_number, cfg["nodes"])
    fleet.enroll()
    try:
        n = cfg["nodes"]
        step(f"{daemon.name}: {n} introspection starts")
        with floor.Window(log) as starts:
            out["start_e2e_s"] = scenarios.start_all(inspector, fleet, cfg["in_flight"])
        step(f"{daemon.name}: {n} reports, {cfg['in_flight']} in flight")
        with floor.Window(log) as reports:
            out["continue_e2e_s"] = scenarios.report_all(inspector, fleet, cfg["in_flight"])
        out["calls_start"] = len(starts.calls) / n
        out["calls_continue"] = len(reports.calls) / n
        print(f"   Ironic calls of {n} starts: {floor.summary(starts.calls)}")
        print(f"   Ironic calls of {n} reports: {floor.summary(reports.calls)}")

        step(f"{daemon.name}: the same calls straight to Ironic")
        out["floor_start_s"] = floor.replay(
            ironic, starts.calls, fleet.uuids, cfg["in_flight"], "rebooting"
        )
        out["floor_continue_s"] = floor.replay(
            ironic, reports.calls, fleet.uuids, cfg["in_flight"], "power off"
        )

        step(f"{daemon.name}: {n} reports, {cfg['builtin_in_flight']} in flight")
        scenarios.start_all(inspector, fleet, cfg["in_flight"])
        took = scenarios.report_all(inspector, fleet, cfg["builtin_in_flight"])
        out["nodes_per_s"] = n / took

        step(f"{daemon.name}: GET status and GET /v1/rules under oha")
        status_url = f"{daemon.url}/v1/introspection/{fleet.uuids[0]}"
        out["status_rps"] = load.oha(cfg["oha"], status_url, 64, cfg["oha_seconds"])["rps"]
        scenarios.store_rules(inspector, cfg["rules"])
        rules_url = f"{daemon.url}/v1/rules"
        out["rules_rps"] = load.oha(cfg["oha"], rules_url, 64, cfg["oha_seconds"])["rps"]
        scenarios.delete_rules(inspector)
        out["rss_after_mib"] = daemon.rss_mib()
        out["ironic_retries"] = ironic.retries
    finally:
        fleet.remove()
        daemon.stop()
    return out


def measure_builtin(cfg, env):
    ironic = Http(env["PERF_BUILTIN_URL"])
    fleet = Fleet(ironic, "builtin", 3, cfg["nodes"], inspect_interface="agent")
    step(f"builtin: {cfg['nodes']} reports to Ironic, {cfg['builtin_in_flight']} in flight")
    fleet.enroll()
    try:
        took, failed = scenarios.builtin_inspect(ironic, fleet, cfg["builtin_in_flight"])
    finally:
        fleet.remove()
    return (cfg["nodes"] - failed) / took, failed


def main():
    # Ctrl-C or a kill ends the driver at once: compare.sh then stops the daemons (their
    # process groups are in $PERF_WORK/pids) and throws the Ironics away with their nodes.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda number, _frame: os._exit(128 + number))
    env = os.environ
    cfg = dict(QUICK if env.get("PERF_QUICK") == "1" else FULL, oha=env["PERF_OHA"])
    work = env["PERF_WORK"]
    report = Report()
    t0 = time.monotonic()

    ironic_url = env["PERF_IRONIC_URL"]
    ours = daemons.ours(
        os.path.join(work, "ours"),
        free_port(),
        ironic_url,
        env["PERF_OURS_BIN"],
        env["PERF_OURS_DBSYNC"],
    )
    python = daemons.python(
        os.path.join(work, "python"), free_port(), ironic_url, env["PERF_PY_VENV"]
    )
    o = measure_inspector(cfg, env, ours, 1)
    p = measure_inspector(cfg, env, python, 2)
    builtin, builtin_failed = measure_builtin(cfg, env)

    n = cfg["nodes"]
    for name, unit in (
        ("status_rps", "req/s"),
        ("rules_rps", "req/s"),
        ("start_e2e_s", "s"),
        ("continue_e2e_s", "s"),
    ):
        report.metric(name, unit, ours=o[name], python=p[name])
    report.metric(
        "ironic_floor_s", "s", ours=o["floor_continue_s"], python=p["floor_continue_s"]
    )
    report.metric(
        "ironic_floor_start_s", "s", ours=o["floor_start_s"], python=p["floor_start_s"]
    )
    report.metric(
        "ironic_calls_per_node_start", "calls", ours=o["calls_start"], python=p["calls_start"]
    )
    report.metric(
        "ironic_calls_per_node_continue",
        "calls",
        ours=o["calls_continue"],
        python=p["calls_continue"],
    )
    report.metric(
        "builtin_nodes_per_s",
        "nodes/s",
        ours=o["nodes_per_s"],
        python=p["nodes_per_s"],
        builtin=builtin,
        builtin_failed=builtin_failed,
    )
    for name in ("rss_idle_mib", "rss_after_mib"):
        report.metric(name, "MiB", ours=o[name], python=p[name])
    report.metric("start_s", "s", ours=o["start_s"], python=p["start_s"])

    for name in ("status_rps", "rules_rps"):
        report.target(
            f"{name} ≥ 20 × Python",
            f"{o[name] / p[name]:.1f}×",
            o[name] >= 20 * p[name],
        )
    for name in ("rss_idle_mib", "rss_after_mib"):
        report.target(
            f"{name} ≤ 1/10 of Python's",
            f"{o[name]:.1f} vs {p[name]:.1f} MiB (1/{p[name] / o[name]:.1f})",
            o[name] * 10 <= p[name],
        )
    report.target("start_s < 0.5 s", f"{o['start_s']:.3f} s", o["start_s"] < 0.5)
    for name, fl in (("start_e2e_s", "floor_start_s"), ("continue_e2e_s", "floor_continue_s")):
        report.target(
            f"{name} below Python's",
            f"{o[name]:.2f} vs {p[name]:.2f} s",
            o[name] < p[name],
        )
        report.target(
            f"{name} ≤ 1.25 × Ironic floor",
            f"{o[name]:.2f} vs floor {o[fl]:.2f} s ({o[name] / o[fl]:.2f}×)",
            o[name] <= 1.25 * o[fl],
        )
    # A built-in run that lost nodes (Ironic on SQLite under load) is no fair comparison.
    report.target(
        "builtin_nodes_per_s: ours ≥ 2 × built-in",
        f"{o['nodes_per_s']:.1f} vs {builtin:.1f} nodes/s ({o['nodes_per_s'] / builtin:.2f}×)"
        + (f"; {builtin_failed} built-in nodes failed" if builtin_failed else ""),
        None if builtin_failed else o["nodes_per_s"] >= 2 * builtin,
    )
    ours_fw = daemons.ours(
        os.path.join(work, "ours-firewall"),
        free_port(),
        ironic_url,
        env["PERF_OURS_BIN"],
        env["PERF_OURS_DBSYNC"],
        firewall={"interface": env["PERF_VETH"], "root_helper": f"ip netns exec {env['PERF_NETNS']}"},
    )
    step("ours with the firewall: cost as Ironic grows")
    ours_fw.start()
    try:
        scale.run(cfg, report, Http(ironic_url), ours_fw)
    finally:
        ours_fw.stop()


    print()
    report.print()
    mode = "quick" if env.get("PERF_QUICK") == "1" else "full"
    print(
        f"\n{mode} run: {n} nodes per inspector; {time.monotonic() - t0:.0f} s of measuring; "
        f"connection retries against Ironic: ours {o['ironic_retries']}, python {p['ironic_retries']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
