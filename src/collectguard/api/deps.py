"""FastAPI dependencies (``Annotated`` style): the container and the caller's identity.

Authentication is deny by default: ``authenticate`` is installed once on the app's router (see
``api/app.py``), so every route, including routes added later, requires a principal unless its path
is in ``PUBLIC_PATHS``/``PUBLIC_PREFIXES``. Routes take ``PrincipalDep`` to get the caller::

    @router.get("/cases/{case_id}")
    def case_read(case_id: int, c: ContainerDep, p: PrincipalDep) -> ...:

A caller authenticates with ``Authorization: Bearer <token>`` or with the signed web-session
cookie. Cookie-authenticated requests that change state (POST, PUT, PATCH, DELETE) must carry the
session's CSRF token in the ``X-CSRF-Token`` header or a ``csrf_token`` form field; a bearer token
is never sent by a browser on its own, so bearer requests need none.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collectguard.bootstrap import Container
from collectguard.errors import Forbidden
from collectguard.services.accounts import principal_from_token
from collectguard.services.authz import Principal, require
from collectguard.settings import Settings

# Paths that need no authentication. Everything else does (tests/e2e/test_api_auth.py checks every route).
PUBLIC_PATHS = frozenset(
    {
        "/",
        "/health",
        "/api/v1/assess",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/openapi.json",
        "/self-check",
        "/portal",
        "/signin",
        "/signout",
    }
)
PUBLIC_PREFIXES = ("/static/", "/self-check/", "/pay/")

SESSION_COOKIE = "cg_session"
CSRF_COOKIE = "cg_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
CSRF_COOKIE_MAX_AGE = 7 * 24 * 3600
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_UNSET = object()


def get_container(request: Request) -> Container:
    """The app's container (settings, database, cipher, clock)."""
    return request.app.state.container  # type: ignore[no-any-return]


async def _container(request: Request) -> Container:
    # async: FastAPI runs a plain ``def`` dependency in the thread pool, a thread hop per request for a
    # dictionary look-up (``get_container`` stays a plain function for the callers below).
    return get_container(request)


ContainerDep = Annotated[Container, Depends(_container)]


def is_public(path: str) -> bool:
    """Whether ``path`` is served without authentication."""
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


# ---- signed cookies and CSRF ----------------------------------------------------------------------


def cookie_name(base: str, settings: Settings) -> str:
    """In production the ``__Host-`` prefix makes browsers refuse the cookie from a sibling subdomain."""
    return f"__Host-{base}" if settings.environment == "production" else base


def set_cookie(resp: Response, settings: Settings, base: str, value: str, *, max_age: int) -> None:
    """Set one of our cookies: HttpOnly, SameSite=Lax, Path=/, and Secure in production."""
    resp.set_cookie(
        cookie_name(base, settings),
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.environment == "production",
    )


def _mac(secret: str, purpose: str, value: str) -> str:
    digest = hmac.new(secret.encode(), f"{purpose}|{value}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign(secret: str, purpose: str, value: str) -> str:
    """``value.mac``: HMAC-SHA256 with ``Settings.secret_key``, bound to ``purpose``."""
    return f"{value}.{_mac(secret, purpose, value)}"


def unsign(secret: str, purpose: str, signed: str | None) -> str | None:
    """The value of a ``sign``-ed string, or ``None`` when absent or tampered with."""
    if not signed or "." not in signed or len(signed) > 512:
        return None
    value, mac = signed.rsplit(".", 1)
    return value if hmac.compare_digest(mac, _mac(secret, purpose, value)) else None


def session_token(request: Request) -> str | None:
    """The session token from the signed session cookie, if any."""
    settings = get_container(request).settings
    return unsign(settings.secret_key, "session", request.cookies.get(cookie_name(SESSION_COOKIE, settings)))


def csrf_nonce(request: Request, *, create: bool = False) -> str | None:
    """The browser's CSRF nonce (cookie); with ``create`` a new one, which the middleware then sets."""
    settings = get_container(request).settings
    nonce = request.cookies.get(cookie_name(CSRF_COOKIE, settings))
    if nonce and _NONCE.match(nonce):
        return nonce
    state = request.scope.setdefault("state", {})
    if "csrf_nonce_new" not in state and create:
        state["csrf_nonce_new"] = secrets.token_urlsafe(24)
    return state.get("csrf_nonce_new")  # type: ignore[no-any-return]


def csrf_expected(request: Request, *, create: bool = False) -> str | None:
    """The CSRF token of this browser and session: HMAC over the nonce cookie and the session.

    Binding to the session means signing in or out changes the token; binding to the nonce cookie
    means a token scraped by another browser is useless here (no server-side storage needed).
    """
    nonce = csrf_nonce(request, create=create)
    if nonce is None:
        return None
    session = hashlib.sha256((session_token(request) or "").encode()).hexdigest()
    return _mac(get_container(request).settings.secret_key, "csrf", f"{nonce}|{session}")


def csrf_valid(request: Request, token: str | None) -> bool:
    """Whether ``token`` is this browser's current CSRF token."""
    expected = csrf_expected(request)
    return bool(token) and expected is not None and hmac.compare_digest(str(token), expected)


class CsrfCookieMiddleware:
    """Sets the CSRF nonce cookie on responses whose page created one (pure ASGI, no body buffering)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})  # the dict ``request.state`` of this request writes to

        async def _send(message: Message) -> None:
            nonce = state.get("csrf_nonce_new")
            if message["type"] == "http.response.start" and nonce:
                carrier = Response()
                set_cookie(
                    carrier, scope["app"].state.container.settings, CSRF_COOKIE, nonce, max_age=CSRF_COOKIE_MAX_AGE
                )
                cookies = [(k, v) for k, v in carrier.raw_headers if k == b"set-cookie"]
                message["headers"] = [*message.get("headers", []), *cookies]
            await send(message)

        await self.app(scope, receive, _send)


# ---- the principal --------------------------------------------------------------------------------


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _principal_of(c: Container, token: str) -> Principal | None:
    """The token's principal, read now: a revoked or expired token is refused on its next request.

    On PostgreSQL the look-up is one statement on an autocommit connection: no BEGIN and no COMMIT,
    two round trips fewer on every API request, and nothing that a transaction would add (one
    read-only statement sees one snapshot either way). A database error propagates as in a unit
    of work (503, never an allow). Tests bind the container to one connection: a unit of work there.
    """
    if c.connection is not None or c.settings.is_sqlite:
        with c.uow(write=False) as s:
            return principal_from_token(s, token=token, now=c.clock())
    with c.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        session = c.sessions(bind=conn)
        try:
            return principal_from_token(session, token=token, now=c.clock())
        finally:
            session.close()


def _resolve(request: Request) -> Principal | None:
    """Look the caller up once per request (cached on ``request.state``); blocking, database."""
    cached = getattr(request.state, "principal", _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]
    bearer = _bearer(request)
    token = bearer if bearer is not None else session_token(request)
    principal = None
    if token:
        principal = _principal_of(get_container(request), token)
    request.state.principal = principal
    request.state.via_cookie = principal is not None and bearer is None
    return principal


def _unauthenticated(request: Request) -> HTTPException:
    accept = request.headers.get("accept", "")
    if request.method == "GET" and "text/html" in accept and not request.url.path.startswith("/api/"):
        # A browser asking for a page: send it to the sign-in page and back afterwards.
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        # Borrowers sign in with a one-time code on /portal, staff with a password on /signin.
        location = "/portal" if request.url.path.startswith("/portal/") else f"/signin?next={quote(target)}"
        return HTTPException(303, detail="sign in first", headers={"Location": location})
    return HTTPException(
        401,
        detail="Authentication required (Authorization: Bearer <token>, or sign in)",
        headers={"WWW-Authenticate": 'Bearer realm="collectguard"'},
    )


async def authenticate(request: Request) -> None:
    """The app-wide gate: a principal on every non-public path, CSRF on cookie-authenticated writes."""
    if is_public(request.url.path):
        return
    principal = await run_in_threadpool(_resolve, request)
    if principal is None:
        raise _unauthenticated(request)
    if request.state.via_cookie and request.method not in _SAFE_METHODS:
        token = request.headers.get(CSRF_HEADER)
        if token is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            value = (await request.form()).get(CSRF_FIELD)
            token = value if isinstance(value, str) else None
        if not csrf_valid(request, token):
            raise Forbidden("CSRF token missing or invalid", detail={"field": CSRF_FIELD})


_bearer_scheme = HTTPBearer(auto_error=False, description="A token from `collectguard token create`")


async def _resolved(request: Request) -> Principal | None:
    # ``authenticate`` resolved the caller already on every non-public path: no thread hop for the
    # cached answer; a public path that asks for the caller looks it up in the thread pool.
    cached = getattr(request.state, "principal", _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[no-any-return]
    return await run_in_threadpool(_resolve, request)


async def get_principal(
    request: Request,
    # Only for OpenAPI: declares the Bearer scheme on routes that take PrincipalDep (the lock in /docs).
    _scheme: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)],
) -> Principal:
    """The authenticated caller, or 401 problem+json with ``WWW-Authenticate: Bearer``."""
    principal = await _resolved(request)
    if principal is None:
        raise _unauthenticated(request)
    return principal


async def get_optional_principal(request: Request) -> Principal | None:
    """The caller when authenticated, else ``None`` (for public pages that show more when signed in)."""
    return await _resolved(request)


PrincipalDep = Annotated[Principal, Depends(get_principal)]
OptionalPrincipalDep = Annotated[Principal | None, Depends(get_optional_principal)]


def require_permission(permission: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency: ``dependencies=[Depends(require_permission("audit.verify"))]`` -> 403 without it."""

    async def _check(principal: PrincipalDep) -> Principal:  # in memory: no thread hop
        require(principal, permission)
        return principal

    return _check
