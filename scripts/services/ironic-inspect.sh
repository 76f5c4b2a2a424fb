#!/usr/bin/env bash
# A throw-away standalone Ironic 32.1 (API and conductor in one process) whose `inspector`
# inspect interface drives our daemon, for tests/e2e/ironic_inspect.rs. Ironic 32.1.0
# (release series 2025.2) is the last Ironic with that interface; scripts/services/ironic.sh
# runs the newer Ironic 39 the rest of the tests use.
#
#   scripts/services/ironic-inspect.sh start DIR PORT INSPECTOR_URL
#                                       install (once), configure, create the schema, start;
#                                       prints `export ...` lines on stdout
#   scripts/services/ironic-inspect.sh stop DIR
#                                       stop the Ironic started with DIR
#
# Typical use:
#   eval "$(scripts/services/ironic-inspect.sh start .work/ironic-32 16385 http://127.0.0.1:15050)"
#
# INSPECTOR_URL is where Ironic finds the inspector (our daemon): its root, WITHOUT /v1
# (with /v1, Ironic's version discovery reads GET /v1 and fails). Ironic reads the version
# document there once per process, when it first needs it, so the inspector need not run
# yet when Ironic starts; the tests bind our daemon on that fixed address.
#
# Ironic (PyPI, 32.1.0) is installed into .work/venv-ironic-32 under the repository, pinned
# by constraints/openstack-2025.2.txt (its own release series), and reused on later runs.
# Everything else (ironic.conf, SQLite database, lock directory, logs, pid file) lives under
# DIR. Progress goes to stderr, so stdout carries only the export lines
# (INSPECTOR_TEST_IRONIC32_URL, INSPECTOR_TEST_IRONIC32_LOG).
#
# The Ironic it starts: no authentication (noauth), no message bus (rpc_transport = none),
# only the `fake-hardware` hardware type with fake interfaces, except that the `inspector`
# inspect interface is enabled too (never the default: the tests name it when they enroll),
# talking to INSPECTOR_URL without authentication and checking the inspection status every
# second. No DHCP, no automated cleaning, no power-state sync. The `pxe` boot interface is
# enabled too (never the default): a node that names it and has driver_info deploy_kernel /
# deploy_ramdisk (file:// URLs of the dummy DIR/images/deploy.kernel and deploy.initramfs)
# gets managed boot, where Ironic prepares the PXE config under DIR, powers the node itself
# and starts the introspection with ?manage_boot=False.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$repo/.work/venv-ironic-32"
constraints="$repo/constraints/openstack-2025.2.txt"
ironic_version="32.1.0"
READY_DEADLINE_S=60
STOP_DEADLINE_S=20

log() { printf 'ironic-inspect.sh: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

usage() {
    cat >&2 <<'EOF'
usage: ironic-inspect.sh start DIR PORT INSPECTOR_URL
       ironic-inspect.sh stop DIR
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
    log "installing ironic $ironic_version into $venv (takes about a minute)"
    rm -rf "$venv"
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        # Debian's python3 ships venv support separately.
        log "python3 cannot create venvs; installing python3-venv"
        apt-get update -qq >&2 && apt-get install -y -qq python3-venv >&2
    fi
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check --upgrade pip >&2
    # 32.1.0 belongs to the 2025.2 series, so its constraints must resolve: no unpinned
    # fallback (a newer oslo or openstacksdk than it was released with is not what we test).
    [[ -f "$constraints" ]] || die "missing $constraints"
    "$venv/bin/pip" install -q --disable-pip-version-check \
        -c "$constraints" "ironic==$ironic_version" >&2
    log "installed ironic $ironic_version with the 2025.2 constraints"
    log "install took $(elapsed "$t0") s"
}

write_config() {
    local dir="$1" port="$2" inspector_url="$3"
    mkdir -p "$dir/locks" "$dir/tftpboot/master_images" "$dir/pxe-images" \
        "$dir/pxe-master-images" "$dir/httpboot" "$dir/images"
    # Dummy deploy kernel and ramdisk for nodes with the pxe boot interface (tests point
    # driver_info/deploy_kernel and deploy_ramdisk at file://DIR/images/...).
    [[ -s "$dir/images/deploy.kernel" ]] || echo "dummy deploy kernel" >"$dir/images/deploy.kernel"
    [[ -s "$dir/images/deploy.initramfs" ]] || echo "dummy deploy ramdisk" >"$dir/images/deploy.initramfs"
    cat >"$dir/ironic.conf" <<EOF
[DEFAULT]
auth_strategy = noauth
rpc_transport = none
host = test-ironic-32
debug = false
use_stderr = false
log_file = $dir/ironic.log

enabled_hardware_types = fake-hardware
enabled_bios_interfaces = fake
# "pxe" lets Ironic boot the inspection ramdisk itself (managed boot, ?manage_boot=False)
# for a node that names it; "fake" stays the default.
enabled_boot_interfaces = fake,pxe
default_boot_interface = fake
enabled_console_interfaces = fake
enabled_deploy_interfaces = fake
enabled_firmware_interfaces = fake
# "inspector" is the interface under test; "fake" stays the default.
enabled_inspect_interfaces = fake,inspector,no-inspect
default_inspect_interface = fake
enabled_management_interfaces = fake
enabled_network_interfaces = noop
enabled_power_interfaces = fake
enabled_raid_interfaces = fake
enabled_rescue_interfaces = fake
enabled_storage_interfaces = noop
enabled_vendor_interfaces = fake

[api]
host_ip = 127.0.0.1
port = $port
api_workers = 1

[database]
connection = sqlite:///$dir/ironic.sqlite

[dhcp]
dhcp_provider = none

# For the pxe boot interface: PXE configs and cached deploy images under DIR (nothing serves
# them: the node's power is fake). Deploy kernel/ramdisk are file:// URLs of the dummy files
# under DIR/images, which must be listed in file_url_allowed_paths.
[pxe]
tftp_root = $dir/tftpboot
tftp_master_path = $dir/tftpboot/master_images
images_path = $dir/pxe-images
instance_master_path = $dir/pxe-master-images
tftp_server = 127.0.0.1

[deploy]
http_root = $dir/httpboot
http_url = http://127.0.0.1:$port/unused

[conductor]
automated_clean = false
sync_power_state_interval = -1
check_provision_state_interval = 5
deploy_callback_timeout = 60
inspect_wait_timeout = 120
heartbeat_interval = 5
file_url_allowed_paths = $dir/images

[inspector]
# Our daemon, reached through openstacksdk without a service catalog or a token.
auth_type = none
endpoint_override = $inspector_url
status_check_period = 1
# With managed boot Ironic passes the inspector's /v1/continue to the ramdisk as a kernel
# parameter and refuses a loopback address there; no ramdisk runs (the tests post its
# payload themselves), so a TEST-NET address only fills that parameter.
callback_endpoint_override = http://192.0.2.1:5050
# fake-hardware's boot interface cannot boot the inspection ramdisk itself, so for nodes
# using it the inspector manages boot (Ironic sends no ?manage_boot=False); a node with the
# pxe boot interface and deploy_kernel/deploy_ramdisk gets managed boot. false lets both
# kinds be inspected; explicit, since 32.1 warns that the default (unset, meaning false)
# will change to true.
require_managed_boot = false

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
    echo "export INSPECTOR_TEST_IRONIC32_URL=$1"
    echo "export INSPECTOR_TEST_IRONIC32_LOG=$2/ironic.log"
    echo "export INSPECTOR_TEST_IRONIC32_INSPECTOR_URL=$3"
}

start() {
    local dir="$1" port="$2" inspector_url="${3%/}"
    [[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number, got '$port'"
    [[ "$inspector_url" =~ ^https?:// ]] || die "INSPECTOR_URL must be an http(s) URL, got '$inspector_url'"
    [[ "$inspector_url" != */v1 ]] || die "INSPECTOR_URL must not end in /v1 (Ironic's discovery would read GET /v1)"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    local url="http://127.0.0.1:$port"
    local pidfile="$dir/ironic.pid" logfile="$dir/ironic.log"
    local t0 t1
    t0="$(now)"

    if pid_alive "$pidfile"; then
        grep -qxF "endpoint_override = $inspector_url" "$dir/ironic.conf" ||
            die "the Ironic running from $dir calls another inspector; stop it first"
        log "Ironic already running (pid $(cat "$pidfile")); reusing it"
        wait_ready "$url" "$dir"
        print_exports "$url" "$dir" "$inspector_url"
        return
    fi
    if answers "$url/"; then
        die "something else already answers on $url (not started from $dir)"
    fi

    install_venv

    t1="$(now)"
    write_config "$dir" "$port" "$inspector_url"
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

    t1="$(now)"
    # Detached into its own session so it outlives this script; the pid file is the handle.
    # ironic.out holds what escapes the log file (tracebacks of crashing workers); it too is
    # started afresh.
    setsid "$venv/bin/ironic" --config-file "$dir/ironic.conf" \
        </dev/null >"$dir/ironic.out" 2>&1 &
    echo $! >"$pidfile"
    wait_ready "$url" "$dir" fresh
    log "Ironic answered in $(elapsed "$t1") s (pid $(cat "$pidfile"))"
    log "started in $(elapsed "$t0") s; logs in $dir"
    print_exports "$url" "$dir" "$inspector_url"
}


case "${1:-}" in
start)
    [[ $# -eq 4 ]] || usage
    start "$2" "$3" "$4"
    ;;
stop)
    [[ $# -eq 2 ]] || usage
    stop "$2"
    ;;
*) usage ;;
esac
