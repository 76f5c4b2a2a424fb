#!/usr/bin/env bash
# The comparison bench: our daemon, the Python ironic-inspector 12.x and Ironic's own
# inspection, side by side on this machine in one run, then our daemon with its firewall as
# Ironic grows to many ports. Prints one `metric=NAME ours=… python=… unit=…` line per
# measure, then a table with the ratios and whether each target holds.
#
#   tests/perf/compare.sh            the full run (200 nodes per inspector, 10,000 ports)
#   tests/perf/compare.sh --quick    small numbers, for working on the bench itself
#   tests/perf/compare.sh --keep     keep the run's directory (configs, logs) afterwards
#
# Runs as root (it creates a network namespace for the firewall's iptables). On first use it
# installs into .work/ (ignored by git): Ironic 39 (.work/venv-ironic), the Python
# ironic-inspector 12.5 (.work/venv-inspector) and the load generator oha
# (.work/tools/bin/oha, from crates.io); it builds our daemon with `cargo build --release`.
# Everything a run starts (two Ironics on free ports, the inspectors, the namespace, a
# temporary directory) is stopped or removed on exit, Ctrl-C included.
#
# The driver is tests/perf/bench.py (Python, standard library only); this script installs,
# starts the two Ironics and cleans up.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
OHA_VERSION=1.16.0

log() { printf 'compare.sh: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

quick=0
keep=0
for arg in "$@"; do
    case "$arg" in
    --quick) quick=1 ;;
    --keep) keep=1 ;;
    *) die "unknown argument '$arg' (usage: compare.sh [--quick] [--keep])" ;;
    esac
done

[[ $EUID -eq 0 ]] || die "run as root: the firewall's iptables run in a network namespace"
for tool in ip iptables iptables-restore python3 cargo; do
    command -v "$tool" >/dev/null || PATH="$PATH:/usr/sbin:/sbin" command -v "$tool" >/dev/null ||
        die "needs $tool"
done
export PATH="$PATH:/usr/sbin:/sbin"

work="$(mktemp -d /tmp/inspector-perf.XXXXXX)"
netns="inspector-perf-$$"
ironic_dir="$work/ironic"
builtin_dir="$work/ironic-builtin"

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    # The inspectors the driver started, each in a session of its own.
    for pidfile in "$work"/pids/*.pid; do
        [[ -f "$pidfile" ]] || continue
        kill -KILL -- "-$(cat "$pidfile")" 2>/dev/null || true
    done
    scripts/services/ironic.sh stop "$ironic_dir" >/dev/null 2>&1 || true
    scripts/services/ironic.sh stop "$builtin_dir" >/dev/null 2>&1 || true
    ip netns delete "$netns" 2>/dev/null || true
    if ((keep)); then
        log "kept $work"
    else
        rm -rf "$work"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

t0=$SECONDS
log "installing what is missing (first run only)"
scripts/services/python-inspector.sh install >/dev/null
oha="$repo/.work/tools/bin/oha"
if [[ ! -x "$oha" ]]; then
    log "installing oha $OHA_VERSION from crates.io into .work/tools (a few minutes)"
    cargo install --quiet --locked --root "$repo/.work/tools" --version "$OHA_VERSION" oha
fi
log "building our daemon (release)"
cargo build --quiet --release --bin ironic-inspector --bin ironic-inspector-dbsync

log "starting the two Ironics (the venv is installed on first use)"
eval "$(scripts/services/ironic.sh start "$ironic_dir" "$(free_port)")"
ironic_url="$INSPECTOR_TEST_IRONIC_URL"
ironic_log="$INSPECTOR_TEST_IRONIC_LOG"
# Ironic's own inspection: the agent inspect interface, no managed boot needed, and the
# hooks that set the properties our daemon sets (cpus, cpu_arch, memory_mb, local_gb).
cat >"$work/builtin.conf" <<'EOF'
[DEFAULT]
enabled_inspect_interfaces = fake,no-inspect,agent

[inspector]
require_managed_boot = false
hooks = $default_hooks,cpus,memory,root-device

[conductor]
inspect_wait_timeout = 1800
EOF
eval "$(IRONIC_EXTRA_CONFIG="$work/builtin.conf" scripts/services/ironic.sh start "$builtin_dir" "$(free_port)")"
builtin_url="$INSPECTOR_TEST_IRONIC_URL"

log "creating the network namespace $netns for the firewall"
ip netns add "$netns"
ip netns exec "$netns" ip link set lo up
ip netns exec "$netns" ip link add perf0 type veth peer name perf1
ip netns exec "$netns" ip link set perf0 up
log "ready in $((SECONDS - t0)) s; measuring"

PERF_WORK="$work" \
    PERF_QUICK="$quick" \
    PERF_IRONIC_URL="$ironic_url" \
    PERF_IRONIC_LOG="$ironic_log" \
    PERF_BUILTIN_URL="$builtin_url" \
    PERF_OURS_BIN="$repo/target/release/ironic-inspector" \
    PERF_OURS_DBSYNC="$repo/target/release/ironic-inspector-dbsync" \
    PERF_PY_VENV="$repo/.work/venv-inspector" \
    PERF_OHA="$oha" \
    PERF_NETNS="$netns" \
    PERF_VETH=perf0 \
    PYTHONDONTWRITEBYTECODE=1 \
    python3 -u tests/perf/bench.py

log "finished in $((SECONDS - t0)) s"
