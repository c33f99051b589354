# One image for every jobbench service in docker-compose.yml: the HTTP target, the Celery workers
# (the pool is chosen on each service's command line), Flower and the producer.
#
# Build arguments (compose passes them through from the shell or .env when set):
#   PYTHON_IMAGE  the base image; a machine that cannot pull names a local stand-in built from
#                 Debian packages (make images-local writes them into docker/local.env).
#   WHEELHOUSE    unset: pip installs from its index. docker/wheels: only from the wheels built
#                 on the host by make images-local (no index), for containers that cannot use PyPI.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}
ARG WHEELHOUSE=

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # matplotlib (the report's charts) needs a writable config dir whatever the user's HOME.
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /app

# Only what the package needs (see .dockerignore): results, tests and the venv stay out.
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY worker ./worker
COPY producer ./producer
# Only a README unless make images-local filled it (see .dockerignore).
COPY docker/wheels /tmp/docker/wheels
RUN pip install ${WHEELHOUSE:+--no-index --find-links /tmp/$WHEELHOUSE} . \
    && rm -rf /tmp/docker \
    && useradd --create-home --uid 10001 jobbench \
    && mkdir -p /app/results \
    && chown jobbench /app/results

# Nothing here needs root (and Celery warns when a worker runs as root).
USER jobbench

# 8080: the HTTP target; 5555: Flower. Compose publishes only Flower, on 127.0.0.1.
EXPOSE 8080 5555
CMD ["jobbench", "--help"]
