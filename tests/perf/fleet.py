"""The bench's nodes in Ironic: enrolling and removing fake-hardware nodes with their ports,
waiting on their states, and the ironic-python-agent report each one posts.

A fleet is one set of nodes sharing a resource class (`perf-<name>`), which is how the
bench lists only its own nodes; a fleet's number (0-255) goes into every MAC and BMC
address it uses, so fleets never collide.
"""

import copy
import json
import os

from client import pool, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
INVENTORY = os.path.join(HERE, "..", "fixtures", "ipa-inventory.json")
# The API version of the bench's own calls to Ironic. Nodes created at 1.11 or later start in
# `enroll`, a state both inspectors accept; 1.21 filters lists by resource class, 1.31 lets a
# node name its inspect interface, and below 1.39 `inspect wait` is shown as `inspecting`.
ENROLL_VERSION = {"X-OpenStack-Ironic-API-Version": "1.84"}
# Both inspectors and Ironic's own lookup can at most keep this many requests in flight
# against the standalone Ironic's API server without resets.
ENROLL_IN_FLIGHT = 8


def mac(fleet, node, port):
    return f"52:54:{fleet:02x}:{node >> 8 & 0xFF:02x}:{node & 0xFF:02x}:{port:02x}"


def bmc(fleet, node):
    return f"10.{fleet}.{node >> 8 & 0xFF}.{node & 0xFF}"


class Fleet:
    def __init__(self, ironic, name, number, count, ports=2, inspect_interface=None):
        self.ironic = ironic
        self.name = name
        self.number = number
        self.count = count
        self.ports = ports if isinstance(ports, list) else [ports] * count
        self.inspect_interface = inspect_interface
        self.uuids = []
        with open(INVENTORY) as f:
            self.template = json.load(f)

    @property
    def resource_class(self):
        return f"perf-{self.name}"

    def enroll(self, with_ports=True):
        """Creates the nodes, and their ports unless `with_ports` is false (then
        add_ports does it later)."""

        def one(index):
            body = {
                "driver": "fake-hardware",
                "name": f"perf-{self.name}-{index}",
                "resource_class": self.resource_class,
                "driver_info": {"ipmi_address": bmc(self.number, index)},
            }
            if self.inspect_interface:
                body["inspect_interface"] = self.inspect_interface
            node = self.ironic.call("POST", "/v1/nodes", body, (201,), ENROLL_VERSION)
            if with_ports:
                self._ports(index, node["uuid"])
            return node["uuid"]

        self.uuids = pool(range(self.count), one, ENROLL_IN_FLIGHT)

    def add_ports(self):
        pool(range(self.count), lambda i: self._ports(i, self.uuids[i]), ENROLL_IN_FLIGHT)

    def _ports(self, index, uuid):
        for port in range(self.ports[index]):
            self.ironic.call(
                "POST",
                "/v1/ports",
                {"address": mac(self.number, index, port), "node_uuid": uuid},
                (201,),
            )

    def remove(self):
        def one(uuid):
            status, body = self.ironic.request("DELETE", f"/v1/nodes/{uuid}")
            if status == 409:
                # A node in a state that cannot be deleted (e.g. `inspect failed`) can be in
                # maintenance.
                self.ironic.request(
                    "PUT", f"/v1/nodes/{uuid}/maintenance", {}, ENROLL_VERSION
                )
                status, body = self.ironic.request("DELETE", f"/v1/nodes/{uuid}")
            if status not in (204, 404):
                raise RuntimeError(f"cannot remove node {uuid}: {status} {body}")

        pool(self.uuids, one, ENROLL_IN_FLIGHT)
        self.uuids = []

    def states(self):
        """{uuid: node} with power and provision state, in one listing (paged by Ironic)."""
        path = (
            f"/v1/nodes?resource_class={self.resource_class}"
            "&fields=uuid,power_state,provision_state,last_error&limit=1000"
        )
        nodes = {}
        while path:
            page = self.ironic.call("GET", path, headers=ENROLL_VERSION)
            for node in page["nodes"]:
                nodes[node["uuid"]] = node
            nxt = page.get("next")
            path = nxt[nxt.index("/v1/") :] if nxt else None
        return nodes

    def wait_all(self, what, predicate, deadline_s=600, pause_s=0.1):
        """Waits until predicate(node) holds for every node of the fleet."""

        def check():
            nodes = self.states()
            return len(nodes) == self.count and all(predicate(n) for n in nodes.values())

        wait_for(f"{what} on all {self.count} nodes of fleet {self.name}", check, deadline_s, pause_s)

    def report(self, index):
        """The ramdisk's report for node `index`: the fixture with this node's MACs (the
        first one is the PXE NIC, named in both places the agent names it) and BMC
        address."""
        payload = copy.deepcopy(self.template)
        inventory = payload["inventory"]
        template_nic = inventory["interfaces"][0]
        interfaces = []
        for port in range(self.ports[index]):
            nic = copy.deepcopy(template_nic)
            nic["name"] = f"eth{port}"
            nic["mac_address"] = mac(self.number, index, port)
            nic["ipv4_address"] = f"192.0.{2 + port % 200}.{1 + index % 250}"
            interfaces.append(nic)
        inventory["interfaces"] = interfaces
        inventory["bmc_address"] = bmc(self.number, index)
        pxe = "01-" + mac(self.number, index, 0).replace(":", "-")
        payload["boot_interface"] = pxe
        inventory["boot"] = dict(inventory.get("boot") or {}, pxe_interface=pxe)
        return payload
