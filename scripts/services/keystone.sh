#!/usr/bin/env bash
# A throw-away Keystone for the integration tests (tests/api/keystone.rs).
#
#   scripts/services/keystone.sh start DIR PORT   install (once), configure, start, seed;
#                                                 prints `export ...` lines on stdout
#   scripts/services/keystone.sh stop DIR         stop the Keystone started with DIR
#
# Typical use:  eval "$(scripts/services/keystone.sh start .work/keystone 35357)"
#
# Keystone (PyPI) is installed into .work/venv-keystone under the repository, pinned by
# constraints/openstack-2025.2.txt, and reused on later runs. Everything else (config,
# SQLite database, fernet keys, logs, pid file) lives under DIR. Progress goes to stderr,
# so stdout carries only the export lines.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$repo/.work/venv-keystone"
constraints="$repo/constraints/openstack-2025.2.txt"
# Keystone itself is not in upper-constraints; 28.x is the 2025.2 (Flamingo) series.
keystone_pinned="keystone==28.0.0"
keystone_fallback="keystone==30.0.0"

admin_password="admin-secret"
service_user="inspector"
service_password="inspector-secret"
service_project="service"
member_user="member-user"
member_password="member-secret"

log() { printf 'keystone.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    cat >&2 <<'EOF'
usage: keystone.sh start DIR PORT
       keystone.sh stop DIR
EOF
    exit 2
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

install_venv() {
    if [[ -x "$venv/bin/keystone-manage" && -x "$venv/bin/gunicorn" ]]; then
        log "reusing $venv"
        return
    fi
    local t0
    t0="$(now)"
    log "installing Keystone into $venv (takes about half a minute)"
    rm -rf "$venv"
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        # Debian's python3 ships venv support separately.
        log "python3 cannot create venvs; installing python3-venv"
        apt-get update -qq >&2 && apt-get install -y -qq python3-venv >&2
    fi
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip >&2
    if [[ -f "$constraints" ]] &&
        "$venv/bin/pip" install -q -c "$constraints" "$keystone_pinned" gunicorn >&2; then
        log "installed $keystone_pinned with 2025.2 constraints"
    else
        log "constrained install failed; installing $keystone_fallback unconstrained"
        "$venv/bin/pip" install -q "$keystone_fallback" gunicorn >&2
    fi
    log "install took $(elapsed "$t0") s"
}

write_config() {
    local dir="$1"
    mkdir -p "$dir/fernet-keys" "$dir/receipt-keys" "$dir/credential-keys"
    cat >"$dir/keystone.conf" <<EOF
[DEFAULT]
use_stderr = false
log_file = $dir/keystone-app.log

[database]
connection = sqlite:///$dir/keystone.db

[token]
provider = fernet

[fernet_tokens]
key_repository = $dir/fernet-keys

[fernet_receipts]
key_repository = $dir/receipt-keys

[credential]
key_repository = $dir/credential-keys

[identity]
# Cheap hashing: these are throw-away test passwords and logins should be fast.
password_hash_rounds = 4
EOF
}

pid_alive() {
    local pidfile="$1"
    [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

wait_ready() {
    local url="$1" pidfile="$2" logfile="$3" deadline=$((SECONDS + 90))
    while ((SECONDS < deadline)); do
        if "$venv/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
            "$url" 2>/dev/null; then
            return 0
        fi
        if ! pid_alive "$pidfile" && ((SECONDS > 5)); then
            tail -n 30 "$logfile" >&2 || true
            die "gunicorn exited before Keystone answered"
        fi
        sleep 0.2
    done
    tail -n 30 "$logfile" >&2 || true
    die "Keystone did not answer on $url within 90 s"
}

print_exports() {
    local url="$1"
    cat <<EOF
export INSPECTOR_TEST_KEYSTONE_URL=$url
export INSPECTOR_TEST_KEYSTONE_SERVICE_USER=$service_user
export INSPECTOR_TEST_KEYSTONE_SERVICE_PASSWORD=$service_password
export INSPECTOR_TEST_KEYSTONE_SERVICE_PROJECT=$service_project
export INSPECTOR_TEST_KEYSTONE_ADMIN_USER=admin
export INSPECTOR_TEST_KEYSTONE_ADMIN_PASSWORD=$admin_password
export INSPECTOR_TEST_KEYSTONE_ADMIN_PROJECT=admin
export INSPECTOR_TEST_KEYSTONE_MEMBER_USER=$member_user
export INSPECTOR_TEST_KEYSTONE_MEMBER_PASSWORD=$member_password
export INSPECTOR_TEST_KEYSTONE_MEMBER_PROJECT=$service_project
EOF
}

start() {
    local dir="$1" port="$2"
    [[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number, got '$port'"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    local url="http://127.0.0.1:$port/v3"
    local pidfile="$dir/keystone.pid" logfile="$dir/gunicorn.log"
    local t0
    t0="$(now)"

    if pid_alive "$pidfile"; then
        log "Keystone already running (pid $(cat "$pidfile")); reusing it"
        wait_ready "$url" "$pidfile" "$logfile"
        print_exports "$url"
        return
    fi

    install_venv
    write_config "$dir"
    export OS_KEYSTONE_CONFIG_FILES="$dir/keystone.conf"
    local manage=("$venv/bin/keystone-manage" --config-file "$dir/keystone.conf")

    local t1
    t1="$(now)"
    "${manage[@]}" db_sync
    # Write-ahead logging: with the default rollback journal, a Keystone request that reads
    # on one pooled connection while writing on another deadlocks on the SQLite file
    # ("database is locked" after 5 s, then a 500), e.g. when granting a role.
    "$venv/bin/python" -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("PRAGMA journal_mode=WAL")' \
        "$dir/keystone.db"
    if [[ ! -f "$dir/fernet-keys/0" ]]; then
        "${manage[@]}" fernet_setup --keystone-user root --keystone-group root
    fi
    if [[ ! -f "$dir/credential-keys/0" ]]; then
        "${manage[@]}" credential_setup --keystone-user root --keystone-group root
    fi
    "${manage[@]}" bootstrap \
        --bootstrap-password "$admin_password" \
        --bootstrap-admin-url "$url" \
        --bootstrap-internal-url "$url" \
        --bootstrap-public-url "$url" \
        --bootstrap-region-id RegionOne
    log "database and keys ready in $(elapsed "$t1") s"

    t1="$(now)"
    # One synchronous worker: requests are served one at a time, which is plenty for tests
    # and keeps two processes from contending for the SQLite file.
    # Detached into its own session so it outlives this script; the pid file is the handle.
    setsid "$venv/bin/gunicorn" \
        --bind "127.0.0.1:$port" \
        --workers 1 \
        --timeout 60 \
        --chdir "$here" \
        --pid "$pidfile" \
        --error-logfile "$logfile" \
        keystone_wsgi:application \
        </dev/null >>"$dir/gunicorn.out" 2>&1 &
    # gunicorn writes the pid file itself once it has bound; until then use the launcher's.
    echo $! >"$pidfile"
    wait_ready "$url" "$pidfile" "$logfile"
    log "Keystone answered in $(elapsed "$t1") s"

    "$venv/bin/python" "$here/keystone_setup.py" \
        "$url" "$admin_password" "$service_password" "$member_password"
    log "started in $(elapsed "$t0") s; logs in $dir"
    print_exports "$url"
}

stop() {
    local dir="$1" pidfile="$1/keystone.pid"
    if ! pid_alive "$pidfile"; then
        log "not running"
        rm -f "$pidfile"
        return
    fi
    local pid
    pid="$(cat "$pidfile")"
    kill -TERM "$pid"
    local deadline=$((SECONDS + 20))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            log "still running after 20 s; killing"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    rm -f "$pidfile"
    log "stopped"
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
