#!/usr/bin/env bash
# A throw-away PostgreSQL 15 server for the database tests.
#
# Usage:
#   scripts/services/postgres.sh start DIR PORT   # prints the SQLAlchemy URL on stdout
#   scripts/services/postgres.sh stop DIR
#
# The cluster lives under DIR (created if needed) and listens on 127.0.0.1:PORT only. Its
# role `inspector` may create databases, so each test can work in a database of its own.
# `start` is idempotent: an initialised cluster is reused and a running one is left alone.
# PostgreSQL refuses to run as root, so every server command runs as the `postgres` user.
# Tests read the URL from INSPECTOR_TEST_POSTGRES_URL, e.g.
#   export INSPECTOR_TEST_POSTGRES_URL=$(scripts/services/postgres.sh start .work/pg 55432)
set -euo pipefail

PG_VERSION=15
BIN=/usr/lib/postgresql/$PG_VERSION/bin
DB_USER=inspector
DB_NAME=inspector
# Only ever used by a loopback server that the tests throw away.
DB_PASSWORD=inspector-test-pw
READY_DEADLINE_S=30

log() { echo "postgres: $*" >&2; }
die() {
    log "$*"
    exit 1
}
usage() {
    echo "usage: $0 start DIR PORT | stop DIR" >&2
    exit 2
}

as_postgres() { runuser -u postgres -- "$@"; }

ensure_installed() {
    if [[ -x "$BIN/initdb" && -x "$BIN/pg_ctl" ]]; then
        return
    fi
    log "installing postgresql-$PG_VERSION"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >&2
    apt-get install -y --no-install-recommends "postgresql-$PG_VERSION" >&2
}

is_running() {
    as_postgres "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1
}

psql_admin() {
    as_postgres "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres -d postgres
}

start() {
    ensure_installed
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd)
    DATA="$DIR/data"
    SOCK="$DIR/sock"
    mkdir -p "$SOCK"
    # The postgres user must be able to reach DIR; the parents are world-traversable here.
    chown postgres: "$DIR" "$SOCK"
    chmod 0755 "$DIR"

    if [[ ! -f "$DATA/PG_VERSION" ]]; then
        log "initialising a cluster in $DATA"
        rm -rf "$DATA"
        # cwd must be a directory the postgres user can enter.
        (cd "$DIR" && as_postgres "$BIN/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
            --auth-local=trust --auth-host=scram-sha-256 >"$DIR/initdb.log" 2>&1) ||
            die "initdb failed, see $DIR/initdb.log"
    fi

    if is_running; then
        log "already running ($DATA)"
    else
        log "starting on 127.0.0.1:$PORT"
        # pg_ctl -w polls readiness itself and gives up after -t seconds.
        (cd "$DIR" && as_postgres "$BIN/pg_ctl" start -D "$DATA" -l "$DIR/server.log" -w \
            -t "$READY_DEADLINE_S" -o "-c listen_addresses=127.0.0.1 -c port=$PORT \
            -c unix_socket_directories=$SOCK -c fsync=off -c synchronous_commit=off \
            -c full_page_writes=off -c max_connections=200" >&2) ||
            die "server did not start, see $DIR/server.log"
    fi

    psql_admin <<SQL
SELECT 'CREATE ROLE $DB_USER LOGIN CREATEDB'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') \gexec
ALTER ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASSWORD';
SELECT 'CREATE DATABASE $DB_NAME OWNER $DB_USER'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB_NAME') \gexec
SQL
    echo "postgresql://$DB_USER:$DB_PASSWORD@127.0.0.1:$PORT/$DB_NAME"
}

stop() {
    if [[ ! -d "$DIR" ]]; then
        return
    fi
    DIR=$(cd "$DIR" && pwd)
    DATA="$DIR/data"
    if [[ -f "$DATA/PG_VERSION" ]] && is_running; then
        (cd "$DIR" && as_postgres "$BIN/pg_ctl" stop -D "$DATA" -m fast -w -t "$READY_DEADLINE_S" >&2)
    fi
}

cmd=${1:-}
case "$cmd" in
start)
    [[ $# -eq 3 ]] || usage
    DIR=$2
    PORT=$3
    start
    ;;
stop)
    [[ $# -eq 2 ]] || usage
    DIR=$2
    stop
    ;;
*) usage ;;
esac
