# One image for every jobbench service in docker-compose.yml: the HTTP target, the Celery workers
# (the pool is chosen on each service's command line), Flower and the producer.
FROM python:3.11-slim-bookworm

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
RUN pip install . \
    && useradd --create-home --uid 10001 jobbench \
    && mkdir -p /app/results \
    && chown jobbench /app/results

# Nothing here needs root (and Celery warns when a worker runs as root).
USER jobbench

# 8080: the HTTP target; 5555: Flower. Compose publishes only Flower, on 127.0.0.1.
EXPOSE 8080 5555
CMD ["jobbench", "--help"]
