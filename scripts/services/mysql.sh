#!/usr/bin/env bash
# A throw-away MariaDB server for the database tests.
#
# Usage:
#   scripts/services/mysql.sh start DIR PORT   # prints the SQLAlchemy URL on stdout
#   scripts/services/mysql.sh stop DIR
#
# Data, socket, pid and logs live under DIR; the server listens on 127.0.0.1:PORT only.
# The user `inspector` may create databases named `inspector*`, so each test can work in a
# database of its own. `start` is idempotent: an initialised data directory is reused and a
# running server is left alone.
# Tests read the URL from INSPECTOR_TEST_MYSQL_URL, e.g.
#   export INSPECTOR_TEST_MYSQL_URL=$(scripts/services/mysql.sh start .work/mysql 53306)
set -euo pipefail

DB_USER=inspector
DB_NAME=inspector
# Only ever used by a loopback server that the tests throw away.
DB_PASSWORD=inspector-test-pw
READY_DEADLINE_S=30

log() { echo "mysql: $*" >&2; }
die() {
    log "$*"
    exit 1
}
usage() {
    echo "usage: $0 start DIR PORT | stop DIR" >&2
    exit 2
}

ensure_installed() {
    if command -v mariadbd >/dev/null && command -v mariadb-install-db >/dev/null &&
        command -v mariadb >/dev/null; then
        return
    fi
    log "installing MariaDB"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >&2
    apt-get install -y --no-install-recommends mariadb-server-core mariadb-client-core >&2
}

write_config() {
    # skip-name-resolve: a TCP login from 127.0.0.1 then only matches 'user'@'%'.
    # utf8mb4: the built-in default character set is latin1.
    # tmpdir of its own: at start-up mariadbd deletes every leftover `#sql*` file in its
    # tmpdir, so servers sharing /tmp delete each other's temporary tables (seen as
    # mariadb-install-db failing when tests start several servers at once).
    cat >"$CNF" <<EOF
[mysqld]
user = root
datadir = $DIR/data
tmpdir = $DIR/tmp
socket = $DIR/mysqld.sock
pid-file = $DIR/mysqld.pid
log-error = $DIR/server.log
port = $PORT
bind-address = 127.0.0.1
skip-name-resolve
skip-log-bin
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
innodb_buffer_pool_size = 32M
innodb_log_file_size = 16M
innodb_flush_log_at_trx_commit = 0
max_connections = 200

[client]
socket = $DIR/mysqld.sock
port = $PORT
EOF
}

# The server log's last lines, for a failure message (CI keeps only what the tests print).
server_log_tail() {
    printf '; last lines of %s:\n' "$DIR/server.log"
    tail -n 20 "$DIR/server.log" 2>/dev/null || true
}

client() { mariadb --defaults-file="$CNF" -u root "$@"; }

# mariadb-client-core has no mariadb-admin; a trivial query over the socket is the ping.
is_running() { client -e 'SELECT 1' >/dev/null 2>&1; }

start() {
    ensure_installed
    mkdir -p "$DIR/tmp"
    DIR=$(cd "$DIR" && pwd)
    CNF="$DIR/my.cnf"
    write_config

    if [[ ! -d "$DIR/data/mysql" ]]; then
        log "initialising a data directory in $DIR/data"
        rm -rf "$DIR/data"
        mariadb-install-db --defaults-file="$CNF" --auth-root-authentication-method=socket \
            --skip-test-db >"$DIR/install-db.log" 2>&1 ||
            die "mariadb-install-db failed, see $DIR/install-db.log$(server_log_tail)"
    fi

    if is_running; then
        log "already running ($DIR)"
    else
        log "starting on 127.0.0.1:$PORT"
        setsid mariadbd --defaults-file="$CNF" </dev/null >>"$DIR/server.log" 2>&1 &
        local deadline=$((SECONDS + READY_DEADLINE_S))
        until is_running; do
            if ((SECONDS >= deadline)); then
                die "server not ready after ${READY_DEADLINE_S}s$(server_log_tail)"
            fi
            if ! kill -0 $! 2>/dev/null; then
                die "server exited$(server_log_tail)"
            fi
            sleep 0.1
        done
    fi

    client <<SQL
CREATE DATABASE IF NOT EXISTS \`$DB_NAME\`;
CREATE USER IF NOT EXISTS '$DB_USER'@'%' IDENTIFIED BY '$DB_PASSWORD';
ALTER USER '$DB_USER'@'%' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL PRIVILEGES ON \`inspector%\`.* TO '$DB_USER'@'%';
SQL
    echo "mysql+pymysql://$DB_USER:$DB_PASSWORD@127.0.0.1:$PORT/$DB_NAME"
}

stop() {
    if [[ ! -d "$DIR" ]]; then
        return
    fi
    DIR=$(cd "$DIR" && pwd)
    local pidfile="$DIR/mysqld.pid"
    if [[ ! -f "$pidfile" ]]; then
        return
    fi
    local pid
    pid=$(cat "$pidfile")
    if ! kill -0 "$pid" 2>/dev/null; then
        return
    fi
    kill -TERM "$pid"
    local deadline=$((SECONDS + READY_DEADLINE_S))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            die "server $pid still running after ${READY_DEADLINE_S}s"
        fi
        sleep 0.1
    done
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
