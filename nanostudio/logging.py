"""Structured logging: one line per record, logfmt (`ts=… level=… logger=… msg="…" key=value`)
or, with LOG_FORMAT=json, one JSON object with the same fields."""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import UTC, datetime

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}


def _quote(value: object) -> str:
    text = str(value)
    if text == "" or any(ch in text for ch in ' ="\n\t'):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def _fields(formatter: logging.Formatter, record: logging.LogRecord) -> dict[str, object]:
    fields: dict[str, object] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
        "request_id": getattr(record, "request_id", "-"),
    }
    # Extra context passed as logger.info("…", extra={"job_id": 3}) becomes key=value.
    for key, value in record.__dict__.items():
        if key not in _RESERVED and not key.startswith("_"):
            fields[key] = value
    if record.exc_info:
        fields["exc"] = formatter.formatException(record.exc_info)
    return fields


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{key}={_quote(value)}" for key, value in _fields(self, record).items())


class JsonFormatter(logging.Formatter):
    """For log pipelines that read JSON (LOG_FORMAT=json); values that are not JSON types are
    written as their text."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(self, record), default=str, ensure_ascii=False)


# --- The request id in Celery tasks ------------------------------------------------------------
# A task sent while a request is handled carries its id in a message header; the worker puts it
# back in request_id_var while the task runs, so the task's log lines name the request.
HEADER = "nano_request_id"


def tag_task(headers: dict[str, object]) -> None:
    """Name the request being handled, if any, in a task message's headers."""
    request_id = request_id_var.get()
    if request_id != "-":
        headers[HEADER] = request_id


def connect_celery() -> None:
    from celery.signals import before_task_publish, task_postrun, task_prerun

    tokens: dict[str, contextvars.Token[str]] = {}

    @before_task_publish.connect(weak=False)
    def _send(headers: dict[str, object] | None = None, **_: object) -> None:
        if headers is not None:
            tag_task(headers)

    @task_prerun.connect(weak=False)
    def _start(task_id: str = "", task: object = None, **_: object) -> None:
        request_id = getattr(getattr(task, "request", None), HEADER, None)
        if request_id:
            tokens[task_id] = request_id_var.set(str(request_id))

    @task_postrun.connect(weak=False)
    def _end(task_id: str = "", **_: object) -> None:
        token = tokens.pop(task_id, None)
        if token is not None:
            request_id_var.reset(token)
