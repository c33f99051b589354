# Stand-in for redis:7-alpine: Debian's redis-server 7, run as user redis in /data (the volume),
# reachable from other containers as the upstream image is (see redis-entrypoint.sh).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data \
    && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/
WORKDIR /data
USER redis
EXPOSE 6379
ENTRYPOINT ["redis-entrypoint.sh"]
CMD ["redis-server"]
