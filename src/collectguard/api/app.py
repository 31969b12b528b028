"""The FastAPI application: API under /api/v1, server-rendered pages, OpenAPI at /docs."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable

import structlog
from fastapi import Depends, FastAPI, Request, Response

from collectguard import __version__
from collectguard.adapters.logging import configure_logging, get_logger
from collectguard.api import problems
from collectguard.bootstrap import Container

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    "Permissions-Policy": "geolocation=(), camera=(), microphone=()",
}


def create_app(container: Container) -> FastAPI:
    """Build the app around one container (settings, database, cipher, clock)."""
    configure_logging(container.settings.log_level, json=container.settings.log_json)
    log = get_logger("collectguard.http")
    app = FastAPI(
        title="collectguard API",
        version=__version__,
        description="合规催收平台 API — every planned collection contact is checked by the guard before it "
        "happens. Errors are RFC 9457 problem+json.",
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.container = container
    problems.install(app)
    limit = container.settings.max_request_bytes

    @app.middleware("http")
    async def _envelope(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        structlog.contextvars.bind_contextvars(request_id=rid)
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            resp: Response = problems.problem(413, "Request too large", f"bodies are limited to {limit} bytes",
                                              code="too_large", instance=request.url.path)
        else:
            start = time.perf_counter()
            resp = await call_next(request)
            log.info("request", method=request.method, path=request.url.path, status=resp.status_code,
                     ms=round((time.perf_counter() - start) * 1000, 2))
        for k, v in SECURITY_HEADERS.items():
            resp.headers.setdefault(k, v)
        resp.headers["X-Request-ID"] = rid
        structlog.contextvars.clear_contextvars()
        return resp

    from pathlib import Path

    from fastapi.staticfiles import StaticFiles

    from collectguard.api.deps import CsrfCookieMiddleware, authenticate
    from collectguard.api.routes import register_routes

    # Deny by default: every route registered below requires a principal unless its path is public.
    app.router.dependencies.append(Depends(authenticate))
    app.add_middleware(CsrfCookieMiddleware)
    app.mount("/static", StaticFiles(directory=str(Path(__file__).parent.parent / "web" / "static")),
              name="static")
    register_routes(app)
    return app
