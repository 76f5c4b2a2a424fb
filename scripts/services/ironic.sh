#!/usr/bin/env bash
# A throw-away standalone Ironic (API and conductor in one process) for the end-to-end tests
# (tests/e2e/).
#
#   scripts/services/ironic.sh start DIR PORT   install (once), configure, create the schema,
#                                               start; prints `export ...` lines on stdout
#   scripts/services/ironic.sh stop DIR         stop the Ironic started with DIR
#
# Typical use:  eval "$(scripts/services/ironic.sh start .work/ironic 6385)"
#
# IRONIC_EXTRA_CONFIG=FILE (optional, for `start`): a second configuration file, read after
# the generated ironic.conf, so its options win (the performance bench uses it to switch on
# Ironic's own inspection). Unset, Ironic runs with ironic.conf alone.
#
# Ironic (PyPI, 39.0.0) is installed into .work/venv-ironic under the repository and reused on
# later runs. It is installed with constraints/openstack-2025.2.txt when that resolves; 39.0.0
# is newer than that series (it needs e.g. keystoneauth1>=5.17.0, the list pins 5.12.0), so in
# practice its dependencies come unpinned. Everything else (ironic.conf, SQLite database, lock
# directory, logs, pid file) lives under DIR. Progress goes to stderr, so stdout carries only
# the export lines (INSPECTOR_TEST_IRONIC_URL, INSPECTOR_TEST_IRONIC_LOG).
#
# The Ironic it starts: no authentication (noauth; every request acts as admin), no message
# bus (rpc_transport = none), only the `fake-hardware` hardware type with fake interfaces,
# no DHCP, no automated cleaning, no power-state sync. Nodes therefore move through
# manage / provide / deploy within a tenth of a second and never touch real hardware. The
# `redfish` hardware type is enabled too (never the default): a node switched to it without
# a redfish_address fails power validation, which the tests use (see tests/e2e/ironic_api.rs).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$repo/.work/venv-ironic"
constraints="$repo/constraints/openstack-2025.2.txt"
ironic_version="39.0.0"
READY_DEADLINE_S=60
STOP_DEADLINE_S=20

log() { printf 'ironic.sh: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

usage() {
    cat >&2 <<'EOF'
usage: ironic.sh start DIR PORT
       ironic.sh stop DIR
EOF
    exit 2
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

installed_version() {
    "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("ironic"))' 2>/dev/null || true
}

install_venv() {
    if [[ -x "$venv/bin/ironic" && -x "$venv/bin/ironic-dbsync" &&
        "$(installed_version)" == "$ironic_version" ]]; then
        log "reusing $venv (ironic $ironic_version)"
        return
    fi
    local t0
    t0="$(now)"
    log "installing ironic $ironic_version into $venv (takes about half a minute)"
    rm -rf "$venv"
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        # Debian's python3 ships venv support separately.
        log "python3 cannot create venvs; installing python3-venv"
        apt-get update -qq >&2 && apt-get install -y -qq python3-venv >&2
    fi
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check --upgrade pip >&2
    # Ask the resolver first (a dry run fails fast, within seconds) so a constraint conflict
    # does not leave a half-installed venv behind.
    if [[ -f "$constraints" ]] &&
        "$venv/bin/pip" install -q --disable-pip-version-check --dry-run \
            -c "$constraints" "ironic==$ironic_version" >/dev/null 2>&1; then
        "$venv/bin/pip" install -q --disable-pip-version-check \
            -c "$constraints" "ironic==$ironic_version" >&2
        log "installed ironic $ironic_version with the 2025.2 constraints"
    else
        log "ironic $ironic_version does not resolve with the 2025.2 constraints; installing its dependencies unpinned"
        "$venv/bin/pip" install -q --disable-pip-version-check "ironic==$ironic_version" >&2
    fi
    log "install took $(elapsed "$t0") s"
}

write_config() {
    local dir="$1" port="$2"
    mkdir -p "$dir/locks"
    cat >"$dir/ironic.conf" <<EOF
[DEFAULT]
auth_strategy = noauth
rpc_transport = none
host = test-ironic
debug = false
use_stderr = false
log_file = $dir/ironic.log

# fake-hardware is what the tests use. redfish is enabled (never the default) only so that
# a test can switch a node to it: without driver_info/redfish_address its power validation
# fails, which is how the tests get a node whose power interface does not validate
# (fake-hardware's only power interface, fake, accepts anything). The extra interfaces
# below are the ones redfish needs to be loadable; none of them touches hardware until used.
enabled_hardware_types = fake-hardware,redfish
enabled_bios_interfaces = fake,no-bios
enabled_boot_interfaces = fake,redfish-virtual-media
enabled_console_interfaces = fake,no-console
enabled_deploy_interfaces = fake,ramdisk
enabled_firmware_interfaces = fake,no-firmware
enabled_inspect_interfaces = fake,no-inspect
enabled_management_interfaces = fake,redfish
enabled_network_interfaces = noop
enabled_power_interfaces = fake,redfish
enabled_raid_interfaces = fake,no-raid
enabled_rescue_interfaces = fake,no-rescue
enabled_storage_interfaces = noop
enabled_vendor_interfaces = fake,no-vendor
# No default_*_interface options: Ironic refuses to start unless each is valid for every
# enabled hardware type, and "fake" is not valid for redfish. Unset, the default is the
# first enabled interface in the hardware type's own order of preference: "fake" for every
# fake-hardware interface but network and storage ("noop"), redfish's own for redfish
# (a node is switched with PATCH ...?reset_interfaces=true). The tests name every
# interface when they enroll anyway.

[api]
host_ip = 127.0.0.1
port = $port
api_workers = 1

[database]
connection = sqlite:///$dir/ironic.sqlite

[dhcp]
dhcp_provider = none

[conductor]
automated_clean = false
sync_power_state_interval = -1
# Short periodic tasks, so that nodes stuck in a *-wait state time out promptly in tests.
check_provision_state_interval = 5
deploy_callback_timeout = 60
inspect_wait_timeout = 60
heartbeat_interval = 5

[oslo_concurrency]
lock_path = $dir/locks

[oslo_policy]
enforce_scope = false
enforce_new_defaults = false
EOF
}

# shellcheck source=scripts/services/ironic-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/ironic-common.sh"


# The URL, and Ironic's log (its API logs one line per request, "127.0.0.1 - PUT /v1/... -
# 204 (...ms)": with fake interfaces that is the only trace some calls leave, e.g. setting
# the boot device, so tests read it).
print_exports() {
    echo "export INSPECTOR_TEST_IRONIC_URL=$1"
    echo "export INSPECTOR_TEST_IRONIC_LOG=$2/ironic.log"
}

start() {
    local dir="$1" port="$2"
    [[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number, got '$port'"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    local url="http://127.0.0.1:$port"
    local pidfile="$dir/ironic.pid" logfile="$dir/ironic.log"
    local t0 t1
    t0="$(now)"

    if pid_alive "$pidfile"; then
        log "Ironic already running (pid $(cat "$pidfile")); reusing it"
        wait_ready "$url" "$dir"
        print_exports "$url" "$dir"
        return
    fi
    if answers "$url/"; then
        die "something else already answers on $url (not started from $dir)"
    fi

    install_venv

    t1="$(now)"
    write_config "$dir" "$port"
    # Each start gets a fresh log (ironic-dbsync writes to it too; the previous one is kept
    # as ironic.log.1), since wait_ready reads it to notice a start that cannot succeed.
    if [[ -f "$logfile" ]]; then mv -f "$logfile" "$logfile.1"; fi
    # create_schema refuses a database that already has tables; a stopped Ironic's database
    # is reused as it is (nodes left behind by earlier runs stay).
    if [[ ! -s "$dir/ironic.sqlite" ]]; then
        "$venv/bin/ironic-dbsync" --config-file "$dir/ironic.conf" create_schema \
            >>"$dir/dbsync.log" 2>&1 || {
            tail -n 30 "$dir/dbsync.log" >&2
            die "ironic-dbsync create_schema failed (see $dir/dbsync.log)"
        }
    else
        "$venv/bin/ironic-dbsync" --config-file "$dir/ironic.conf" upgrade \
            >>"$dir/dbsync.log" 2>&1 || {
            tail -n 30 "$dir/dbsync.log" >&2
            die "ironic-dbsync upgrade failed (see $dir/dbsync.log)"
        }
    fi
    log "config and database ready in $(elapsed "$t1") s"

    local config=(--config-file "$dir/ironic.conf")
    if [[ -n "${IRONIC_EXTRA_CONFIG:-}" ]]; then
        [[ -f "$IRONIC_EXTRA_CONFIG" ]] || die "IRONIC_EXTRA_CONFIG: no file $IRONIC_EXTRA_CONFIG"
        config+=(--config-file "$IRONIC_EXTRA_CONFIG")
        log "with the extra configuration $IRONIC_EXTRA_CONFIG"
    fi

    t1="$(now)"
    # Detached into its own session so it outlives this script; the pid file is the handle.
    # ironic.out holds what escapes the log file (tracebacks of crashing workers); it too is
    # started afresh.
    setsid "$venv/bin/ironic" "${config[@]}" \
        </dev/null >"$dir/ironic.out" 2>&1 &
    echo $! >"$pidfile"
    wait_ready "$url" "$dir" fresh
    log "Ironic answered in $(elapsed "$t1") s (pid $(cat "$pidfile"))"
    log "started in $(elapsed "$t0") s; logs in $dir"
    print_exports "$url" "$dir"
}


case "${1:-}" in
start)
    [[ $# -eq 3 ]] || usage
    start "$2" "$3"
    ;;
stop)
    [[ $# -eq 2 ]] || usage
    stop "$2"
    ;;
*) usage ;;
esac
