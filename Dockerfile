# The image docker-compose.yml runs for `worker` (orchestrator worker MODULE) and `api` (orchestrator
# serve). Your own workflows: COPY your package next to `workers/` (or build FROM this image) and
# point the worker command at it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY orchestrator ./orchestrator
COPY workers ./workers
COPY config ./config
RUN pip install ".[http]"

# Celery refuses to be comfortable as root, and nothing here needs it.
RUN useradd --create-home --uid 10001 orchestrator
USER orchestrator

EXPOSE 8080
CMD ["orchestrator", "--help"]
