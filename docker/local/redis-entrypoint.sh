#!/bin/sh
# The upstream image turns protected mode off (no config file, no password, listening on every
# interface: the container's network is the boundary). Debian's build keeps it on, which refuses
# every client but loopback, so it is turned off here; options given later still override it.
set -e
if [ "$1" = redis-server ]; then
    shift
    case "${1:-}" in
        -* | "") set -- redis-server --protected-mode no "$@" ;;
        *) conf=$1; shift; set -- redis-server "$conf" --protected-mode no "$@" ;;
    esac
fi
exec "$@"
