#!/usr/bin/env python3
"""An exec: processing hook in Python: adds the machine's rack to the introspection data.

The rack is found from the BMC address the ramdisk reported, in the RACKS table below.
Introspection rules, stored data and later hooks then see a "rack" field, e.g. a rule
with the condition {"op": "eq", "field": "rack", "value": "rack-1"}. Enable it with

    [processing]
    processing_hooks = exec:/usr/local/lib/inspector/rewrite_data.py,$default_processing_hooks

It acts before the node lookup ("before_processing"), where it answers {"data": ...} with
the whole new data; at "before_update" it answers nothing. See PLUGINS.md.
"""

import ipaddress
import json
import sys

RACKS = {
    "192.0.2.0/24": "rack-1",
    "198.51.100.0/24": "rack-2",
}


def rack_of(address):
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    for network, rack in RACKS.items():
        if ip in ipaddress.ip_network(network):
            return rack
    return None


def main():
    stage = sys.argv[1] if len(sys.argv) > 1 else ""
    request = json.load(sys.stdin)
    if stage == "before_update":
        return 0
    if stage != "before_processing":
        print("rewrite_data.py: unexpected stage %r" % stage, file=sys.stderr)
        return 1
    data = request["data"]
    rack = rack_of(data.get("ipmi_address") or "")
    if rack is None:
        # Standard error that is not the last line of a failure goes to the
        # inspector's log, as a warning.
        print("no rack known for BMC %r" % data.get("ipmi_address"), file=sys.stderr)
        return 0
    data["rack"] = rack
    json.dump({"data": data}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
