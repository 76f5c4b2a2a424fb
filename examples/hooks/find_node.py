#!/usr/bin/env python3
"""An exec: node-not-found hook in Python: finds the node of a machine by its BMC address.

The inspector asks it when no node under introspection matches a ramdisk's report (say
the machine's BMC was given a new address after introspection started). It looks the
reported BMC address up in nodes.json, kept next to this script:

    {"192.0.2.77": "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"}

and answers {"uuid": "<that node>"}; the report is then processed for that node (whose
introspection record is started if it has none running). Finding nothing is a failure: a
non-zero exit, whose last line of standard error the ramdisk and the log are told. Enable
it with

    [processing]
    node_not_found_hook = exec:/usr/local/lib/inspector/find_node.py

See PLUGINS.md.
"""

import json
import os
import sys

TABLE = os.path.join(os.path.dirname(os.path.realpath(__file__)), "nodes.json")


def main():
    stage = sys.argv[1] if len(sys.argv) > 1 else ""
    if stage != "node_not_found":
        print("find_node.py: unexpected stage %r" % stage, file=sys.stderr)
        return 1
    data = json.load(sys.stdin)["data"]
    bmc = data.get("ipmi_address")
    try:
        with open(TABLE) as table:
            nodes = json.load(table)
    except (OSError, ValueError) as exc:
        print("cannot read %s: %s" % (TABLE, exc), file=sys.stderr)
        return 1
    uuid = nodes.get(bmc) if isinstance(bmc, str) else None
    if uuid is None:
        print("no node known for BMC address %r" % bmc, file=sys.stderr)
        return 1
    json.dump({"uuid": uuid}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
