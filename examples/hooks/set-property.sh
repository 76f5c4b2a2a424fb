#!/bin/sh
# An exec: processing hook in plain shell: records, as the node property "site", where the
# node was inspected. Enable it with
#
#   [processing]
#   processing_hooks = $default_processing_hooks,exec:/usr/local/lib/inspector/set-property.sh
#
# The inspector runs it twice per report: with "before_processing" (no node known yet:
# it answers nothing, which changes nothing) and with "before_update" (the node is known:
# it answers a JSON patch for it). The JSON document on standard input is not needed here,
# but it is read all the same, as a hook should. See PLUGINS.md for the protocol.
set -eu

SITE=dc1

stage=${1:-}
cat >/dev/null
case "$stage" in
    before_processing)
        ;;
    before_update)
        printf '{"node_patches": [{"op": "add", "path": "/properties/site", "value": "%s"}]}\n' "$SITE"
        ;;
    *)
        # The last line of standard error is the failure message the operator sees.
        echo "set-property.sh: unexpected stage '$stage'" >&2
        exit 1
        ;;
esac
