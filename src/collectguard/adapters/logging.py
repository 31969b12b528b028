"""Structured JSON logs (structlog). Personal data never goes into a log line: callers log ids and
masked values only, and ``scrub`` masks anything that looks like a phone or ID number as a last guard."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

_PHONE = re.compile(r"(?<!\d)(\+?86)?(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
_ID18 = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3}[\dXx])(?![0-9A-Za-z])")


def scrub_text(s: str) -> str:
    s = _ID18.sub(lambda m: m.group(1)[:4] + "**********" + m.group(3)[-4:], s)
    return _PHONE.sub(lambda m: m.group(2) + "****" + m.group(4), s)


def _scrub(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    for k, v in list(event.items()):
        if isinstance(v, str):
            event[k] = scrub_text(v)
    return event


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    renderer: Any = structlog.processors.JSONRenderer(ensure_ascii=False) if json else \
        structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _scrub,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping().get(level, 20)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str = "collectguard") -> Any:
    return structlog.get_logger(name)
