"""The FastAPI application: API under /api/v1, server-rendered pages, OpenAPI at /docs."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from collectguard import __version__
from collectguard.adapters.logging import configure_logging
from collectguard.api import problems
from collectguard.api.envelope import SECURITY_HEADERS, EnvelopeMiddleware
from collectguard.bootstrap import Container

__all__ = ["SECURITY_HEADERS", "create_app"]  # SECURITY_HEADERS: where it used to live


def create_app(container: Container) -> FastAPI:
    """Build the app around one container (settings, database, cipher, clock)."""
    configure_logging(container.settings.log_level, json=container.settings.log_json)
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

    # Pure ASGI (not @app.middleware): see api/envelope.py for why.
    app.add_middleware(EnvelopeMiddleware, limit=limit)

    from pathlib import Path

    from fastapi.staticfiles import StaticFiles

    from collectguard.api.deps import CsrfCookieMiddleware, authenticate
    from collectguard.api.routes import register_routes

    # Deny by default: every route registered below requires a principal unless its path is public.
    app.router.dependencies.append(Depends(authenticate))
    app.add_middleware(CsrfCookieMiddleware)
    app.mount("/static", StaticFiles(directory=str(Path(__file__).parent.parent / "web" / "static")), name="static")
    register_routes(app)
    return app
