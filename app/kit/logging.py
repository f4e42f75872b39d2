"""JSON logs (python-json-logger): one object per line with the time, level, logger,
message, the request id and the authenticated user id (null outside a request or for an
anonymous one), plus whatever `extra=` a call adds.

The time is ISO 8601 in UTC with its offset written out and milliseconds,
`2026-03-31T09:30:01.123+00:00`: one zone for every host and replica, so lines from
several processes sort and compare as text, and the offset says which zone it is."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

from app.kit.requestid import current_request_id, current_user_id


def iso_time(record: logging.LogRecord) -> str:
    """The record's time, ISO 8601 in UTC with offset and milliseconds."""
    return datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")


class _RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        if not hasattr(record, "user_id"):  # the access log passes it explicitly
            record.user_id = current_user_id()
        return True


class _JsonFormatter(JsonFormatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return iso_time(record)


class _TextFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return iso_time(record)


def configure_logging(
    level: str = "INFO", *, json_output: bool = True, stream: TextIO | None = None
) -> None:
    """Replaces the root logger's handlers with one writing to `stream` (stderr)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(_RequestContextFilter())
    if json_output:
        handler.setFormatter(
            _JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(user_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(
            _TextFormatter(
                "%(asctime)s %(levelname)s %(name)s [%(request_id)s user=%(user_id)s] %(message)s"
            )
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our access log replaces it
