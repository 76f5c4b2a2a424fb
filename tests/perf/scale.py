"""Cost as the data centre grows: our daemon with its DHCP firewall on (real iptables in the
bench's network namespace), first with a few ports in Ironic, then with many ports and many
nodes on introspection. A report's cost and a status read should not grow with them."""

import time

import load
import scenarios
from client import Http
from fleet import Fleet


def spread(total, count):
    """`total` split into `count` near-equal whole parts."""
    return [total // count + (1 if i < total % count else 0) for i in range(count)]


def run(cfg, report, ironic, ours_fw):
    sizes = cfg["scale"]
    inspector = Http(ours_fw.url)
    measured = Fleet(ironic, "scale", 10, sizes["nodes"])
    small_ports = 2 * sizes["nodes"]
    filler_nodes = sizes["on_introspection"] - sizes["nodes"]
    filler = Fleet(
        ironic, "filler", 11, filler_nodes, ports=spread(sizes["ports"] - small_ports, filler_nodes)
    )
    try:
        print(f"scale: {sizes['nodes']} nodes, {small_ports} ports in Ironic", flush=True)
        measured.enroll()
        scenarios.start_all(inspector, measured, cfg["in_flight"])
        status_url = f"{ours_fw.url}/v1/introspection/{measured.uuids[0]}"
        small_status = load.oha(cfg["oha"], status_url, 64, cfg["oha_seconds"])
        small = scenarios.report_all(inspector, measured, cfg["in_flight"])

        # The other nodes go on introspection before their ports are added: what is
        # measured is a report and a status read once Ironic holds every port, and
        # starting a thousand introspections against a growing port list would only
        # lengthen the run.
        t0 = time.monotonic()
        filler.enroll(with_ports=False)
        scenarios.start_all(inspector, filler, cfg["in_flight"])
        scenarios.start_all(inspector, measured, cfg["in_flight"])
        print(
            f"scale: {sizes['on_introspection']} nodes on introspection, "
            f"enrolled and started in {time.monotonic() - t0:.0f} s",
            flush=True,
        )
        t0 = time.monotonic()
        filler.add_ports()
        print(
            f"scale: {sizes['ports']} ports in Ironic, the last {sizes['ports'] - small_ports} "
            f"added in {time.monotonic() - t0:.0f} s",
            flush=True,
        )
        large_status = load.oha(cfg["oha"], status_url, 64, cfg["oha_seconds"])
        large = scenarios.report_all(inspector, measured, cfg["in_flight"])
    finally:
        measured.remove()
        filler.remove()

    report.metric(
        "scale_continue_e2e_s",
        "s",
        ours=large,
        small=small,
        ports_small=small_ports,
        ports_large=sizes["ports"],
    )
    report.metric(
        "scale_status_p50_ms",
        "ms",
        ours=large_status["p50_ms"],
        small=small_status["p50_ms"],
        on_introspection_small=sizes["nodes"],
        on_introspection_large=sizes["on_introspection"],
    )
    report.target(
        f"continue_e2e_s, firewall on, {sizes['ports']} ports ≤ 1.5 × {small_ports} ports",
        f"{large:.2f} s vs {small:.2f} s ({large / small:.2f}×)",
        large <= 1.5 * small,
    )
    report.target(
        f"status p50, {sizes['on_introspection']} nodes on introspection ≤ 1.5 × {sizes['nodes']}",
        f"{large_status['p50_ms']:.2f} ms vs {small_status['p50_ms']:.2f} ms "
        f"({large_status['p50_ms'] / small_status['p50_ms']:.2f}×)",
        large_status["p50_ms"] <= 1.5 * small_status["p50_ms"],
    )
