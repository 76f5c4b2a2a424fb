#!/usr/bin/env bash
# Installs the Python ironic-inspector (PyPI, 12.5.0) into .work/venv-inspector so the
# database tests can check that our schema and alembic bookkeeping interoperate with the
# real tool. Its migrations start with the two revisions of 2.2.x.
#
# Usage: scripts/services/python-inspector.sh install
#   Prints the path of the venv's ironic-inspector-dbsync on stdout; everything else goes to
#   stderr. Run again: a no-op when the right version is already installed.
#   Tests read it from INSPECTOR_TEST_PY_DBSYNC, e.g.
#     export INSPECTOR_TEST_PY_DBSYNC=$(scripts/services/python-inspector.sh install)
set -euo pipefail

VERSION=12.5.0
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VENV="$ROOT/.work/venv-inspector"
CONSTRAINTS="$ROOT/constraints/openstack-2025.2.txt"

log() { echo "python-inspector: $*" >&2; }

cmd=${1:-}
case "$cmd" in
install) ;;
*)
    echo "usage: $0 install" >&2
    exit 2
    ;;
esac

if [[ ! -f "$CONSTRAINTS" ]]; then
    log "missing $CONSTRAINTS (OpenStack 2025.2 upper constraints)"
    exit 1
fi

if [[ -x "$VENV/bin/ironic-inspector-dbsync" ]] &&
    [[ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("ironic-inspector"))' 2>/dev/null)" == "$VERSION" ]]; then
    log "ironic-inspector $VERSION already installed in $VENV"
    echo "$VENV/bin/ironic-inspector-dbsync"
    exit 0
fi

PYTHON=${PYTHON:-python3}
log "creating $VENV"
"$PYTHON" -m venv "$VENV" >&2
# ironic-inspector itself is a service, not in the constraints list; its dependencies are.
# The two database drivers are what SQLAlchemy uses for postgresql:// and mysql+pymysql://.
"$VENV/bin/pip" install --quiet --disable-pip-version-check -c "$CONSTRAINTS" \
    "ironic-inspector==$VERSION" psycopg2-binary PyMySQL >&2
log "installed ironic-inspector $VERSION"
echo "$VENV/bin/ironic-inspector-dbsync"
