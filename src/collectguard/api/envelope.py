"""The envelope of every HTTP response: request id, size limit, security headers, access log.

A pure ASGI middleware. It used to be an ``@app.middleware("http")`` function, which Starlette runs
through ``BaseHTTPMiddleware``: a task group, a memory stream and a copy of every response body per
request — a large share of the API's CPU per contact attempt under load (docs/attempts.md). Here
the response passes straight through and only its start message is touched.
"""

from __future__ import annotations

import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collectguard.adapters.logging import get_logger
from collectguard.api import problems

__all__ = ["SECURITY_HEADERS", "EnvelopeMiddleware"]

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    "Permissions-Policy": "geolocation=(), camera=(), microphone=()",
}
_SECURITY_RAW = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in SECURITY_HEADERS.items()]


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return str(v.decode("latin-1"))
    return None


class EnvelopeMiddleware:
    """Request id (``X-Request-ID``, bound to the log context), 413 for a declared body over
    ``limit`` bytes, the security headers unless a route set its own, one access-log line."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app, self.limit = app, limit
        self.log = get_logger("collectguard.http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _header(scope, b"x-request-id") or uuid.uuid4().hex[:16]
        structlog.contextvars.bind_contextvars(request_id=rid)
        rid_raw = rid.encode("latin-1")
        status = 0

        async def _send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"x-request-id"]
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in _SECURITY_RAW if k not in present]
                headers.append((b"x-request-id", rid_raw))
                message["headers"] = headers
            await send(message)

        try:
            declared = _header(scope, b"content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
                resp = problems.problem(
                    413,
                    "Request too large",
                    f"bodies are limited to {self.limit} bytes",
                    code="too_large",
                    instance=scope["path"],
                )
                await resp(scope, receive, _send)
                return
            start = time.perf_counter()
            await self.app(scope, receive, _send)
            self.log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                ms=round((time.perf_counter() - start) * 1000, 2),
            )
        finally:
            structlog.contextvars.clear_contextvars()
