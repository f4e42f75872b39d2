# syntax=docker/dockerfile:1
# Multi-stage: build a wheel-only virtualenv, then run as a non-root user.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY app ./app
RUN /opt/venv/bin/pip install .

FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    APP_ENV=production DATABASE_URL=sqlite:////data/ledger.db UPLOAD_DIR=/data/uploads
RUN groupadd --system ledger && useradd --system --gid ledger --home /app ledger \
    && mkdir -p /app /data && chown ledger:ledger /data
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY alembic.ini ./
COPY migrations ./migrations
USER ledger
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status == 200 else 1)"
# Migrations first, then the reference data every deployment needs, then the server.
CMD ["sh", "-c", "ledger migrate && ledger seed-reference && exec uvicorn --factory app.main:app_factory --host 0.0.0.0 --port 8000 --workers 2 --no-access-log --proxy-headers"]
