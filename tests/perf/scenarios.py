"""What the bench makes an inspector (or Ironic's built-in inspection) do to a fleet, timed:
introspection starts until every node is powered on, ramdisk reports until every node is
finished, rules and statuses under oha."""

import time

from client import pool, wait_for
from fleet import ENROLL_VERSION


def start_all(inspector, fleet, in_flight):
    """Starts introspection on every node, `in_flight` at a time, and waits until Ironic
    shows them all powered on; the seconds from the first POST."""
    t0 = time.monotonic()
    pool(
        fleet.uuids,
        lambda uuid: inspector.call("POST", f"/v1/introspection/{uuid}", expect=(202,)),
        in_flight,
    )
    fleet.wait_all("power on", lambda n: n["power_state"] == "power on", pause_s=0.05)
    return time.monotonic() - t0


def report_all(inspector, fleet, in_flight):
    """Posts every node's ramdisk report, `in_flight` at a time, and waits until every
    introspection is finished; the seconds from the first POST.

    Both inspectors power a node off as the last step of finishing it, so the end is when
    all reports are answered and Ironic shows every node off (one listing per poll, the
    same cost whichever inspector runs). Each status is then read once to check that the
    introspection finished without error; one still running is waited for, and the end
    moves to when it is seen finished.
    """
    reports = [fleet.report(i) for i in range(fleet.count)]
    t0 = time.monotonic()

    def post(index):
        status, body = inspector.request("POST", "/v1/continue", reports[index])
        if status != 200:
            raise RuntimeError(f"report of node {fleet.uuids[index]}: {status} {body}")

    pool(range(fleet.count), post, in_flight)
    fleet.wait_all("power off", lambda n: n["power_state"] == "power off", pause_s=0.05)
    end = time.monotonic()

    pending = list(fleet.uuids)
    while pending:
        still = []
        for uuid in pending:
            status = inspector.call("GET", f"/v1/introspection/{uuid}")
            if status.get("error"):
                raise RuntimeError(f"introspection of {uuid} failed: {status['error']}")
            if not status.get("finished"):
                still.append(uuid)
        if still:
            end = None
            time.sleep(0.05)
        pending = still
        if time.monotonic() - t0 > 600:
            raise RuntimeError(f"{len(pending)} introspections not finished after 600 s")
    return (end or time.monotonic()) - t0


def store_rules(inspector, count):
    """Stores `count` rules that match no node (2.2's rule format, which 12.x takes too)."""
    for n in range(count):
        rule = {
            "description": f"bench rule {n}",
            "conditions": [{"op": "eq", "field": "memory_mb", "value": 1000000 + n}],
            "actions": [{"action": "set-attribute", "path": "/extra/bench", "value": "rule"}],
        }
        inspector.call("POST", "/v1/rules", rule, expect=(200, 201))


def delete_rules(inspector):
    inspector.call("DELETE", "/v1/rules", expect=(200, 204))


def builtin_inspect(ironic, fleet, in_flight):
    """Ironic's own inspection (the `agent` inspect interface): every node managed and
    put into `inspect wait` (untimed), then the reports posted to Ironic's
    /v1/continue_inspection, `in_flight` at a time; the seconds until every node is back in
    `manageable`."""

    def provision(target):
        def one(uuid):
            ironic.call(
                "PUT",
                f"/v1/nodes/{uuid}/states/provision",
                {"target": target},
                expect=(202,),
                headers=ENROLL_VERSION,
            )

        return one

    pool(fleet.uuids, provision("manage"), 8)
    fleet.wait_all("manageable", lambda n: n["provision_state"] == "manageable")
    pool(fleet.uuids, provision("inspect"), 8)
    fleet.wait_all("inspect wait", lambda n: n["provision_state"] == "inspect wait")

    reports = [fleet.report(i) for i in range(fleet.count)]
    t0 = time.monotonic()

    def post(index):
        status, body = ironic.request("POST", "/v1/continue_inspection", reports[index])
        if status not in (200, 202):
            raise RuntimeError(f"report of node {fleet.uuids[index]}: {status} {body}")

    pool(range(fleet.count), post, in_flight)

    def settled():
        nodes = fleet.states().values()
        busy = [n for n in nodes if n["provision_state"] in ("inspecting", "inspect wait")]
        return len(nodes) == fleet.count and not busy and list(nodes)

    nodes = wait_for("Ironic's inspection of every node", settled, 600, 0.05)
    took = time.monotonic() - t0
    # Ironic on SQLite loses some inspections under this load ("database is locked" in
    # its conductor): those nodes end in `inspect failed` and are counted as not done.
    failed = [n for n in nodes if n["provision_state"] != "manageable"]
    if failed:
        print(
            f"   {len(failed)} of {fleet.count} nodes failed Ironic's inspection, e.g.: "
            f"{(failed[0]['last_error'] or '')[:300]}",
            flush=True,
        )
    return took, len(failed)
