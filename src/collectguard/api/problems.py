"""RFC 9457 problem+json for every error, from one handler per exception family."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from collectguard.adapters.logging import get_logger
from collectguard.errors import CollectguardError

PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, *, code: str, instance: str = "", **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": f"https://collectguard.dev/problems/{code}", "title": title,
                            "status": status, "detail": detail, "code": code}
    if instance:
        body["instance"] = instance
    retry = extra.pop("headers_retry", False)
    body.update(extra)
    resp = JSONResponse(body, status_code=status, media_type=PROBLEM)
    if retry:
        resp.headers["Retry-After"] = "5"
    return resp


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    log = get_logger("collectguard.api")

    @app.exception_handler(CollectguardError)
    async def _domain(request: Request, exc: CollectguardError) -> JSONResponse:
        return problem(exc.http_status, exc.title, exc.message, code=exc.code,
                       instance=request.url.path, **exc.detail)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _loc(e.get("loc", ())), "reason": e.get("msg", "invalid")} for e in exc.errors()]
        first = errors[0] if errors else {"field": "body", "reason": "invalid"}
        return problem(422, "Bad input", f"field {first['field']!r}: {first['reason']}", code="bad_input",
                       instance=request.url.path, field=first["field"], errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
                413: "too_large", 429: "rate_limited"}.get(exc.status_code, "http_error")
        resp = problem(exc.status_code, str(exc.detail) if exc.detail else code, str(exc.detail), code=code,
                       instance=request.url.path)
        for k, v in (exc.headers or {}).items():
            resp.headers[k] = v
        return resp

    @app.exception_handler(OperationalError)
    async def _database_down(request: Request, exc: OperationalError) -> JSONResponse:
        # Unreachable, read-only or full database: the request did not happen. Never an allow.
        log.error("database_unavailable", path=request.url.path, error_type=type(exc.orig).__name__)
        return problem(503, "Service unavailable", "the database is unavailable (unreachable, read-only or "
                       "full); nothing was recorded — retry later", code="unavailable", instance=request.url.path,
                       headers_retry=True)

    @app.exception_handler(OverflowError)
    async def _out_of_range(request: Request, exc: OverflowError) -> JSONResponse:
        # A number beyond 64 bits (SQLite cannot bind it) or a date pushed past year 9999: the input's fault.
        return problem(422, "Bad input", "a number or date is out of range", code="bad_input",
                       instance=request.url.path)

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if str(getattr(exc.orig, "sqlstate", "") or "").startswith("22"):
            # PostgreSQL "data exception" (a value out of range, too long for its column): the input's fault.
            return problem(422, "Bad input", "a value is out of range or too long", code="bad_input",
                           instance=request.url.path)
        log.error("database_error", path=request.url.path, error_type=type(exc.orig).__name__)
        return problem(503, "Service unavailable", "the database refused the operation; nothing was recorded",
                       code="unavailable", instance=request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Never leak internals; the log carries the type for operators.
        log.error("unhandled_error", path=request.url.path, error_type=type(exc).__name__)
        return problem(500, "Internal error", "an internal error occurred; it has been logged",
                       code="internal_error", instance=request.url.path)
