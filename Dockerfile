# syntax=docker/dockerfile:1
# Nano Studio: one image for web, workers and beat (the command picks the process).

# --- Build: wheels of every dependency ------------------------------------------------------
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml ./
COPY accounts ./accounts
COPY apikeys ./apikeys
COPY audit ./audit
COPY billing ./billing
COPY docs ./docs
COPY nanostudio ./nanostudio
COPY studio ./studio
COPY usage ./usage
COPY webhooks ./webhooks
# The project's own wheel is left out: the source tree is copied as it is (templates, the
# docs' example files), on PYTHONPATH.
RUN pip wheel --no-cache-dir --wheel-dir /wheels . && rm /wheels/nanostudio-*.whl

# --- Runtime: slim, non-root, static files collected at build time --------------------------
FROM python:3.11-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    VAR_DIR=/app/var \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus
# Tesseract (and its German and French data) for OCR; libgl/libglib for RapidOCR's OpenCV;
# curl for the health checks. Unpinned on purpose: Debian stable ships only security fixes.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        tesseract-ocr tesseract-ocr-deu tesseract-ocr-fra libgl1 libglib2.0-0 curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 nano
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/* && rm -rf /wheels
COPY --chown=nano:nano . ./
COPY --chown=nano:nano deploy/entrypoint.sh /usr/local/bin/nano-entrypoint
# collectstatic needs settings that import, not real secrets.
RUN SECRET_KEY=build-only API_KEY_PEPPER=build-only DEBUG=0 python manage.py collectstatic --noinput -v0 \
    && mkdir -p /app/var /tmp/prometheus && chown -R nano:nano /app /tmp/prometheus
USER 10001
EXPOSE 8000
ENTRYPOINT ["nano-entrypoint"]
CMD ["gunicorn", "nanostudio.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "2", \
     "--worker-class", "gthread", "--threads", "32", "--worker-connections", "32", \
     "--limit-request-field_size", "32768"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["curl", "-fsS", "http://127.0.0.1:8000/healthz"]
