"""What an inspector asked of Ironic, read from Ironic's request log, and the same calls made
directly against Ironic: the floor no inspector can go below on that Ironic.

Ironic's API logs one line per request, `127.0.0.1 - PUT /v1/nodes/<uuid>/states/power -
202 (3.1ms)`. The bench notes the log's size before and after a phase and reads the lines
in between, leaving out its own polling (recognised by its resource_class filter).

The log has no request bodies, so a replayed call sends a body of the same kind: the power
state the phase asks for, PXE as boot device, a patch of the four scheduling properties.
A DELETE is replayed as a GET of the same resource, so the replay leaves Ironic's nodes as
they were.
"""

import re
import time

from client import pool

LINE = re.compile(r" - (GET|POST|PUT|PATCH|DELETE) (\S+) - (\d{3}) \(")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
OWN = "resource_class=perf-"
PROPERTIES_PATCH = [
    {"op": "add", "path": "/properties/cpus", "value": 4},
    {"op": "add", "path": "/properties/cpu_arch", "value": "x86_64"},
    {"op": "add", "path": "/properties/memory_mb", "value": 16384},
    {"op": "add", "path": "/properties/local_gb", "value": 464},
]


def log_size(path):
    with open(path, "rb") as f:
        return f.seek(0, 2)


def calls_between(path, start, end):
    """[(method, path, status)] logged between two offsets, the bench's own polls left out."""
    with open(path, "rb") as f:
        f.seek(start)
        text = f.read(end - start).decode(errors="replace")
    calls = []
    for line in text.splitlines():
        match = LINE.search(line)
        if match and OWN not in match.group(2):
            calls.append((match.group(1), match.group(2), int(match.group(3))))
    return calls


class Window:
    """The calls logged while a `with` block ran (the log is flushed per line; a short pause
    at the end lets the last lines land)."""

    def __init__(self, log):
        self.log = log
        self.calls = []

    def __enter__(self):
        self.start = log_size(self.log)
        return self

    def __exit__(self, *exc):
        time.sleep(0.3)
        self.calls = calls_between(self.log, self.start, log_size(self.log))


def per_node(calls, uuids):
    """The calls grouped by the node they name, in order; calls that name none of the nodes
    (listings, look-ups by MAC) are dealt out to the nodes in turn."""
    known = set(uuids)
    groups = {uuid: [] for uuid in uuids}
    others = []
    for call in calls:
        found = [u for u in UUID.findall(call[1]) if u in known]
        if found:
            groups[found[0]].append(call)
        else:
            others.append(call)
    order = list(uuids)
    for i, call in enumerate(others):
        groups[order[i % len(order)]].append(call)
    return groups


def replay(ironic, calls, uuids, in_flight, power_target):
    """Replays the calls node by node, `in_flight` nodes at a time; the seconds it took."""
    groups = per_node(calls, uuids)
    version = {"X-OpenStack-Ironic-API-Version": "1.31"}

    def one(uuid):
        for method, path, _status in groups[uuid]:
            body = None
            if method == "DELETE":
                method = "GET"
            elif method == "PATCH" and path.startswith("/v1/ports/"):
                body = [{"op": "replace", "path": "/pxe_enabled", "value": True}]
            elif method == "PATCH":
                body = PROPERTIES_PATCH
            elif path.endswith("/states/power"):
                body = {"target": power_target}
            elif path.endswith("/management/boot_device"):
                body = {"boot_device": "pxe"}
            elif method == "POST":
                # A port the inspector added: replayed as a harmless read of the node's ports.
                method, path = "GET", f"/v1/nodes/{uuid}/ports"
            elif method == "PUT":
                body = {}
            ironic.request(method, path, body, version)

    t0 = time.monotonic()
    pool(list(uuids), one, in_flight)
    return time.monotonic() - t0


def summary(calls):
    """{'METHOD /v1/kind/...': count}, for the log of what was called."""
    kinds = {}
    for method, path, _status in calls:
        shape = UUID.sub("<uuid>", path.split("?")[0])
        key = f"{method} {shape}" + ("?…" if "?" in path else "")
        kinds[key] = kinds.get(key, 0) + 1
    return dict(sorted(kinds.items(), key=lambda kv: -kv[1]))
