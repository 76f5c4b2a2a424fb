#!/usr/bin/env bash
# A throw-away Swift behind Keystone for the integration tests (tests/api/swift.rs).
#
#   scripts/services/swift.sh start DIR PORT   install (once), configure, start, register
#                                              in Keystone; prints `export ...` on stdout
#   scripts/services/swift.sh stop DIR         stop the Swift started with DIR
#
# Needs a running Keystone: source the exports of scripts/services/keystone.sh first
# (INSPECTOR_TEST_KEYSTONE_URL and the ADMIN and SERVICE users). Typical use:
#   eval "$(scripts/services/keystone.sh start .work/keystone 35357)"
#   eval "$(scripts/services/swift.sh start .work/swift 58080)"
#
# Ports: the proxy listens on PORT; the account, container and object servers on PORT+1,
# PORT+2 and PORT+3; memcached (the proxy's token cache) on PORT+4. All on 127.0.0.1.
#
# Swift (PyPI) and keystonemiddleware go into .work/venv-swift under the repository, pinned
# by constraints/openstack-2025.2.txt, and are reused on later runs; memcached comes from
# Debian. Everything else (rings, configs, the one storage device, logs, pid files) lives
# under DIR. The proxy authenticates with Keystone (`authtoken keystoneauth`): accounts are
# `AUTH_<project id>` and the roles admin and member may use their project's account.
# Progress goes to stderr, so stdout carries only the export line.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$repo/.work/venv-swift"
constraints="$repo/constraints/openstack-2025.2.txt"
# Swift is not in upper-constraints; its dependencies (eventlet, keystonemiddleware...) are.
swift_pinned="swift==2.38.3"

log() { printf 'swift.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    cat >&2 <<'EOF'
usage: swift.sh start DIR PORT
       swift.sh stop DIR
EOF
    exit 2
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

install_venv() {
    if [[ -x "$venv/bin/swift-proxy-server" ]] &&
        "$venv/bin/python" -c 'import keystonemiddleware.auth_token' 2>/dev/null; then
        log "reusing $venv"
        return
    fi
    local t0
    t0="$(now)"
    log "installing Swift into $venv (takes about 15 s)"
    rm -rf "$venv"
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        # Debian's python3 ships venv support separately.
        log "python3 cannot create venvs; installing python3-venv"
        apt-get update -qq >&2 && apt-get install -y -qq python3-venv >&2
    fi
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip >&2
    if [[ -f "$constraints" ]] &&
        "$venv/bin/pip" install -q -c "$constraints" "$swift_pinned" keystonemiddleware >&2; then
        log "installed $swift_pinned with 2025.2 constraints"
    else
        log "constrained install failed; installing $swift_pinned unconstrained"
        "$venv/bin/pip" install -q "$swift_pinned" keystonemiddleware >&2
    fi
    log "install took $(elapsed "$t0") s"
}

install_memcached() {
    if command -v memcached >/dev/null; then
        return
    fi
    local t0
    t0="$(now)"
    log "installing memcached from Debian"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq memcached >&2; then
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq memcached >&2
    fi
    log "memcached installed in $(elapsed "$t0") s"
}

# Rings with one replica and one device per kind; rebuilt only when missing.
build_rings() {
    local dir="$1" port="$2" builder="$venv/bin/swift-ring-builder" offset=1 kind
    # The rings name the servers' ports: a start on another PORT needs new ones.
    if [[ "$(cat "$dir/etc/rings.port" 2>/dev/null)" != "$port" ]]; then
        rm -f "$dir"/etc/*.ring.gz
    fi
    for kind in account container object; do
        if [[ ! -f "$dir/etc/$kind.ring.gz" ]]; then
            rm -f "$dir/etc/$kind.builder"
            "$builder" "$dir/etc/$kind.builder" create 8 1 1 >>"$dir/rings.log" 2>&1
            "$builder" "$dir/etc/$kind.builder" add --region 1 --zone 1 --ip 127.0.0.1 \
                --port $((port + offset)) --device d1 --weight 100 >>"$dir/rings.log" 2>&1
            # Exit 1 is only a warning (e.g. "balance is not ideal" with one device).
            "$builder" "$dir/etc/$kind.builder" rebalance >>"$dir/rings.log" 2>&1 ||
                (($? == 1)) || die "rebalancing the $kind ring failed (see $dir/rings.log)"
        fi
        offset=$((offset + 1))
    done
    echo "$port" >"$dir/etc/rings.port"
}

write_config() {
    local dir="$1" port="$2"
    local etc="$dir/etc" keystone_url="$INSPECTOR_TEST_KEYSTONE_URL"
    mkdir -p "$etc" "$dir/devices/d1"
    cat >"$etc/swift.conf" <<EOF
[swift-hash]
swift_hash_path_suffix = inspector-test
swift_hash_path_prefix = inspector-test

[storage-policy:0]
name = gold
default = yes
EOF
    local offset=1 kind
    for kind in account container object; do
        cat >"$etc/$kind-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $((port + offset))
workers = 0
user = root
swift_dir = $etc
devices = $dir/devices
mount_check = false
log_name = $kind-server

[pipeline:main]
pipeline = $kind-server

[app:$kind-server]
use = egg:swift#$kind

[$kind-replicator]
[$kind-auditor]
[$kind-updater]
EOF
        offset=$((offset + 1))
    done
    cat >"$etc/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $port
workers = 0
user = root
swift_dir = $etc
log_name = proxy-server

[pipeline:main]
pipeline = catch_errors proxy-logging cache authtoken keystoneauth proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
# Keystone projects get their account on first use.
account_autocreate = true

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$((port + 4))

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
www_authenticate_uri = $keystone_url
auth_url = $keystone_url
auth_type = password
username = $INSPECTOR_TEST_KEYSTONE_SERVICE_USER
password = $INSPECTOR_TEST_KEYSTONE_SERVICE_PASSWORD
project_name = $INSPECTOR_TEST_KEYSTONE_SERVICE_PROJECT
user_domain_id = default
project_domain_id = default
delay_auth_decision = true
cache = swift.cache
include_service_catalog = false
http_connect_timeout = 5
http_request_max_retries = 2

[filter:keystoneauth]
use = egg:swift#keystoneauth
reseller_prefix = AUTH_
operator_roles = admin, member
EOF
    # The proxy's config holds the service password.
    chmod 600 "$etc/proxy-server.conf"
}

pid_alive() {
    local pidfile="$1"
    [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# Waits until something accepts TCP connections on 127.0.0.1:PORT, or dies.
wait_port() {
    local name="$1" port="$2" pidfile="$3" logfile="$4" deadline=$((SECONDS + 30))
    while ((SECONDS < deadline)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        if ! pid_alive "$pidfile"; then
            tail -n 30 "$logfile" >&2 || true
            die "$name exited before listening on port $port"
        fi
        sleep 0.1
    done
    tail -n 30 "$logfile" >&2 || true
    die "$name did not listen on port $port within 30 s"
}

# Waits until the proxy answers `GET /info`, which needs no token.
wait_proxy() {
    local port="$1" dir="$2" deadline=$((SECONDS + 60))
    while ((SECONDS < deadline)); do
        if "$venv/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
            "http://127.0.0.1:$port/info" 2>/dev/null; then
            return 0
        fi
        if ! pid_alive "$dir/proxy.pid"; then
            tail -n 30 "$dir/proxy.log" >&2 || true
            die "the proxy exited before answering"
        fi
        sleep 0.2
    done
    tail -n 30 "$dir/proxy.log" >&2 || true
    die "the proxy did not answer on port $port within 60 s"
}

start_memcached() {
    local dir="$1" port="$2" pidfile="$1/memcached.pid"
    if pid_alive "$pidfile"; then
        log "memcached already running (pid $(cat "$pidfile")); reusing it"
        return
    fi
    # -u root: memcached refuses to run as root otherwise. 64 MiB is plenty for tokens.
    setsid memcached -u root -l 127.0.0.1 -p "$port" -U 0 -m 64 -c 256 \
        </dev/null >>"$dir/memcached.log" 2>&1 &
    echo $! >"$pidfile"
    wait_port memcached "$port" "$pidfile" "$dir/memcached.log"
}

start_server() {
    local dir="$1" kind="$2" port="$3" pidfile="$1/$2.pid"
    if pid_alive "$pidfile"; then
        log "$kind server already running (pid $(cat "$pidfile")); reusing it"
        return
    fi
    # With workers = 0 the server is this one process; detached so it outlives the script.
    setsid "$venv/bin/swift-$kind-server" "$dir/etc/$kind-server.conf" --verbose \
        </dev/null >>"$dir/$kind.log" 2>&1 &
    echo $! >"$pidfile"
    wait_port "$kind server" "$port" "$pidfile" "$dir/$kind.log"
}

print_exports() {
    local port="$1"
    echo "export INSPECTOR_TEST_SWIFT_URL=http://127.0.0.1:$port"
}

start() {
    local dir="$1" port="$2"
    [[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number, got '$port'"
    ((port + 4 <= 65535)) || die "PORT must leave room for PORT+4"
    local name
    for name in URL ADMIN_USER ADMIN_PASSWORD ADMIN_PROJECT SERVICE_USER SERVICE_PASSWORD \
        SERVICE_PROJECT; do
        [[ -n "$(printenv "INSPECTOR_TEST_KEYSTONE_$name")" ]] ||
            die "INSPECTOR_TEST_KEYSTONE_$name is not set; source the exports of keystone.sh"
    done
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    local t0 t1
    t0="$(now)"

    install_venv
    install_memcached

    t1="$(now)"
    write_config "$dir" "$port"
    build_rings "$dir" "$port"
    log "configuration and rings ready in $(elapsed "$t1") s"

    t1="$(now)"
    start_memcached "$dir" $((port + 4))
    local offset=1 kind
    for kind in account container object; do
        start_server "$dir" "$kind" $((port + offset))
        offset=$((offset + 1))
    done
    start_server "$dir" proxy "$port"
    wait_proxy "$port" "$dir"
    log "servers answered in $(elapsed "$t1") s"

    t1="$(now)"
    "$venv/bin/python" "$here/swift_setup.py" "$INSPECTOR_TEST_KEYSTONE_URL" \
        "$INSPECTOR_TEST_KEYSTONE_ADMIN_USER" "$INSPECTOR_TEST_KEYSTONE_ADMIN_PASSWORD" \
        "$INSPECTOR_TEST_KEYSTONE_ADMIN_PROJECT" "http://127.0.0.1:$port/v1/AUTH_%(tenant_id)s"
    log "registered in Keystone's catalog in $(elapsed "$t1") s"
    log "started in $(elapsed "$t0") s; logs in $dir"
    print_exports "$port"
}

stop() {
    local dir="$1" names=() pids=() name pidfile i
    # Proxy first, memcached last; every server gets its SIGTERM at once, since each takes
    # about 2 s to wind down.
    for name in proxy object container account memcached; do
        pidfile="$dir/$name.pid"
        if pid_alive "$pidfile"; then
            names+=("$name")
            pids+=("$(cat "$pidfile")")
            kill -TERM "${pids[-1]}" 2>/dev/null || true
        fi
        rm -f "$pidfile"
    done
    if ((${#pids[@]} == 0)); then
        log "not running"
        return
    fi
    local deadline=$((SECONDS + 20))
    for i in "${!pids[@]}"; do
        while kill -0 "${pids[$i]}" 2>/dev/null; do
            if ((SECONDS >= deadline)); then
                log "${names[$i]} still running after 20 s; killing"
                kill -KILL "${pids[$i]}" 2>/dev/null || true
                break
            fi
            sleep 0.1
        done
        log "${names[$i]} stopped"
    done
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
