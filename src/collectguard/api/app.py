"""The FastAPI application: API under /api/v1, server-rendered pages, OpenAPI at /docs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio.to_thread
from fastapi import Depends, FastAPI

from collectguard import __version__
from collectguard.adapters.logging import configure_logging
from collectguard.api import problems
from collectguard.api.envelope import SECURITY_HEADERS, EnvelopeMiddleware
from collectguard.bootstrap import Container

__all__ = ["SECURITY_HEADERS", "create_app"]  # SECURITY_HEADERS: where it used to live


def _threads_to_the_pool(container: Container) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Cap the worker threads (AnyIO's default limiter: 40) at the PostgreSQL pool size.

    Every plain ``def`` route and the token look-up run in that thread pool, and each holds at most
    one pooled connection at a time; with more threads than pooled connections the excess opens a
    connection per request and closes it after (``adapters/db/engine.make_engine``). More threads
    than connections buy nothing on a few cores: the excess requests wait for a thread instead.
    SQLite keeps the default: its writers queue on the database lock either way.
    """

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if not container.settings.is_sqlite:
            anyio.to_thread.current_default_thread_limiter().total_tokens = container.settings.db_pool_size
        yield

    return lifespan


def create_app(container: Container) -> FastAPI:
    """Build the app around one container (settings, database, cipher, clock)."""
    configure_logging(container.settings.log_level, json=container.settings.log_json)
    app = FastAPI(
        lifespan=_threads_to_the_pool(container),
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
