# syntax=docker/dockerfile:1
# Multi-stage: the dependencies in a layer of their own (rebuilt only when pyproject.toml
# changes), the project on top of them from its wheel; then run as a non-root user.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml ./
# [project] dependencies only, read from pyproject.toml; no project code in this layer.
RUN python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep=chr(10))" > /tmp/requirements.txt \
    && /opt/venv/bin/pip install -r /tmp/requirements.txt
COPY README.md ./
COPY app ./app
# The migrations ship inside the package (app/migrations), so nothing else is copied.
RUN /opt/venv/bin/pip install --no-deps .

FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    APP_ENV=production DATABASE_URL=sqlite:////data/ledger.db UPLOAD_DIR=/data/uploads \
    PORT=8000
RUN groupadd --system ledger && useradd --system --gid ledger --home /app ledger \
    && mkdir -p /app /data/uploads && chown -R ledger:ledger /data
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
USER ledger
# The SQLite database and the uploaded documents (declared after the chown above, so a
# new volume starts owned by the service's user).
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import os, sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('PORT', '8000'), timeout=4).status == 200 else 1)"
# Migrations first, then the reference data every deployment needs, then the server.
# Replicas starting together take turns for the first two (app.bootstrap.startup_lock).
# Two workers: /metrics adds up both through PROMETHEUS_MULTIPROC_DIR (emptied at start).
#
# PostgreSQL, two URLs: the schema's owner migrates and the service runs as a role that
# owns nothing (.env.example says how to create both), e.g.
#   -e MIGRATION_DATABASE_URL=postgresql://ledger_owner:…@db:5432/ledger   (ledger migrate)
#   -e DATABASE_URL=postgresql://ledger_app:…@db:5432/ledger               (seed-reference, uvicorn)
#   -e DB_APP_ROLE=ledger_app      (default: the user of DATABASE_URL)
# `ledger migrate` grants DB_APP_ROLE the service's privileges after every upgrade. So
# that the service's containers never hold the owner's password, run `ledger migrate`
# as a one-off job with MIGRATION_DATABASE_URL and start the service without it: its
# own `ledger migrate` then finds the schema current and changes nothing.
#
# SIGTERM (docker stop): uvicorn stops taking connections and lets requests in flight
# finish for up to 8 s, inside Docker's default 10 s before SIGKILL; a request still
# running then is cut off and its transaction rolled back (tests/test_shutdown.py). Raise
# both together (docker stop -t / stop_grace_period) for longer batches.
ENV PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus
CMD ["sh", "-c", "ledger metrics-dir && ledger migrate && ledger seed-reference && exec uvicorn --factory app.main:app_factory --host 0.0.0.0 --port ${PORT:-8000} --workers 2 --no-access-log --proxy-headers --timeout-graceful-shutdown 8"]
