#!/bin/sh
# Every process starts with an empty metrics folder (prometheus_client multiprocess mode).
set -eu
rm -rf "${PROMETHEUS_MULTIPROC_DIR:?}"/* 2>/dev/null || true
exec "$@"
