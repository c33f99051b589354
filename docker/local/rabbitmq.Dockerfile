# Stand-in for rabbitmq:3-alpine: Debian's rabbitmq-server 3, run as user rabbitmq, with the
# upstream image's RABBITMQ_DEFAULT_USER / RABBITMQ_DEFAULT_PASS (see rabbitmq-entrypoint.sh).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends rabbitmq-server \
    && rm -rf /var/lib/apt/lists/* \
    && chown -R rabbitmq:rabbitmq /etc/rabbitmq
COPY rabbitmq-entrypoint.sh /usr/local/bin/
# rabbitmq-diagnostics (the healthcheck) must find the server's Erlang cookie in $HOME.
ENV HOME=/var/lib/rabbitmq
USER rabbitmq
EXPOSE 5672
ENTRYPOINT ["rabbitmq-entrypoint.sh"]
# The server itself, not Debian's /usr/sbin wrapper: that one keeps it as a child (SIGTERM from
# docker stop never reaches it) and sends its logs to files.
CMD ["/usr/lib/rabbitmq/bin/rabbitmq-server"]
