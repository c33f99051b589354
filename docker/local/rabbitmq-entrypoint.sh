#!/bin/sh
# What the upstream image's entrypoint does that compose relies on: logs on the console (docker
# logs), and RABBITMQ_DEFAULT_USER / RABBITMQ_DEFAULT_PASS as the broker's first user (guest
# logs in from localhost only, useless to other containers).
set -e
{
    echo "log.console = true"
    echo "log.file = false"
    if [ -n "${RABBITMQ_DEFAULT_USER:-}" ]; then
        echo "default_user = $RABBITMQ_DEFAULT_USER"
        echo "default_pass = ${RABBITMQ_DEFAULT_PASS:-}"
    fi
} >/etc/rabbitmq/rabbitmq.conf
exec "$@"
