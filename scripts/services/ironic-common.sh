# shellcheck shell=bash disable=SC2154
# Shared by scripts/services/ironic.sh and ironic-inspect.sh (sourced, not run): waiting for
# a freshly started Ironic, giving up on a broken start, and stopping it. The caller defines
# `venv` (the Ironic virtualenv), READY_DEADLINE_S, STOP_DEADLINE_S, and the `log`, `die`,
# `now` and `elapsed` functions.

pid_alive() {
    local pidfile="$1"
    [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

answers() {
    "$venv/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
        "$1" 2>/dev/null
}

# wait_ready URL DIR [fresh]: poll GET URL/ until it answers. With `fresh` (a process this
# script has just started), also give up early on the signs of a start that cannot succeed:
# the master process outlives workers that crash on start (a driver that cannot load, a bad
# option) and respawns them forever, so a traceback or an ERROR line means stop and fail.
wait_ready() {
    local url="$1" dir="$2" fresh="${3:-}" deadline=$((SECONDS + READY_DEADLINE_S))
    while ((SECONDS < deadline)); do
        if answers "$url/"; then
            return 0
        fi
        if ! pid_alive "$dir/ironic.pid"; then
            tail -n 40 "$dir/ironic.out" "$dir/ironic.log" >&2 2>/dev/null || true
            die "ironic exited before its API answered (logs in $dir)"
        fi
        if [[ -n "$fresh" ]] &&
            { grep -q '^Traceback' "$dir/ironic.out" 2>/dev/null ||
                grep -q -E ' (ERROR|CRITICAL) ' "$dir/ironic.log" 2>/dev/null; }; then
            grep -E '^Traceback|Error|ERROR|CRITICAL' "$dir/ironic.out" "$dir/ironic.log" 2>/dev/null |
                grep -v ' DEBUG ' | tail -n 10 >&2 || true
            abandon "$dir"
            die "ironic failed to start (logs in $dir)"
        fi
        sleep 0.2
    done
    tail -n 40 "$dir/ironic.out" "$dir/ironic.log" >&2 2>/dev/null || true
    [[ -n "$fresh" ]] && abandon "$dir"
    die "Ironic did not answer on $url/ within $READY_DEADLINE_S s (logs in $dir)"
}

# A start that failed: the master of a broken start ignores SIGTERM, so kill its group.
abandon() {
    local pidfile="$1/ironic.pid"
    if [[ -f "$pidfile" ]]; then
        kill -KILL -- "-$(cat "$pidfile")" 2>/dev/null || true
        rm -f "$pidfile"
    fi
}

stop() {
    local dir="$1" pidfile="$1/ironic.pid"
    if ! pid_alive "$pidfile"; then
        log "not running"
        rm -f "$pidfile"
        return
    fi
    local pid t0
    pid="$(cat "$pidfile")"
    t0="$(now)"
    kill -TERM "$pid"
    local deadline=$((SECONDS + STOP_DEADLINE_S))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            log "still running after $STOP_DEADLINE_S s; killing its process group"
            # setsid made the master the leader of its own group; its workers are in it.
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    # A worker that outlived its master would keep the port: take the whole group down.
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$pidfile"
    log "stopped in $(elapsed "$t0") s"
}
