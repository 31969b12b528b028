"""Sign-in and sign-out pages, the session cookie and CSRF for forms.

Templates put the CSRF token in every POST form with ``{{ csrf_input(request) }}`` (or the raw value
with ``{{ csrf_token(request) }}``); cookie-authenticated POSTs without it are refused by
``api.deps.authenticate``. A public form handler checks it itself with ``verify_csrf``.
``api.deps.CsrfCookieMiddleware`` sets the browser's CSRF nonce cookie when a page first asks for one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup, escape

from collectguard.adapters.logging import get_logger
from collectguard.api.deps import (
    CSRF_FIELD,
    SESSION_COOKIE,
    ContainerDep,
    OptionalPrincipalDep,
    cookie_name,
    csrf_expected,
    csrf_valid,
    session_token,
    set_cookie,
    sign,
)
from collectguard.api.ratelimit import client_ip, enforce
from collectguard.errors import Forbidden, Unauthenticated
from collectguard.services.accounts import SESSION_TTL, session_end, session_start
from collectguard.web.i18n import pick_lang
from collectguard.web.render import render, templates

router = APIRouter(include_in_schema=False)
log = get_logger("collectguard.auth")

LOGIN_PER_MINUTE = 10  # per client address and per username, counted before the password is checked
_HOME = {"borrower": "/portal", "compliance_officer": "/compliance", "auditor": "/compliance",
         "team_lead": "/work", "collector": "/work", "agency_collector": "/work"}

STRINGS = {
    "title": {"zh-CN": "登录", "en": "Sign in"},
    "username": {"zh-CN": "用户名", "en": "Username"},
    "password": {"zh-CN": "密码", "en": "Password"},
    "submit": {"zh-CN": "登录", "en": "Sign in"},
    "signout": {"zh-CN": "退出登录", "en": "Sign out"},
    "signed_in_as": {"zh-CN": "当前已登录：", "en": "Signed in as "},
    "error.credentials": {"zh-CN": "用户名或密码错误。", "en": "Wrong username or password."},
    "error.csrf": {"zh-CN": "页面已过期，请重新提交。", "en": "The page expired; please submit it again."},
    "hint": {"zh-CN": "催收员、合规人员和管理员从此处登录。",
             "en": "Collectors, compliance staff and administrators sign in here."},
    "borrower_hint": {"zh-CN": "我是借款人：用手机验证码登录借款人服务 →",
                      "en": "I am a borrower: sign in to the borrower portal with a code sent to my phone →"},
}


# ---- CSRF helpers ---------------------------------------------------------------------------------

def csrf_token(request: Request) -> str:
    """This browser's CSRF token for the current session, for a hidden form field or a header."""
    token = csrf_expected(request, create=True)
    assert token is not None  # create=True always yields a nonce
    return token


def csrf_input(request: Request) -> Markup:
    """The hidden ``<input name="csrf_token">`` for a POST form."""
    field = Markup('<input type="hidden" name="{}" value="{}">')
    return field.format(CSRF_FIELD, escape(csrf_token(request)))


def verify_csrf(request: Request, token: str | None) -> None:
    """Raise ``Forbidden`` (403) unless ``token`` is this browser's current CSRF token."""
    if not csrf_valid(request, token):
        raise Forbidden("CSRF token missing or invalid", detail={"field": CSRF_FIELD})


templates.env.globals["csrf_token"] = csrf_token
templates.env.globals["csrf_input"] = csrf_input


# ---- pages ----------------------------------------------------------------------------------------

def _strings(lang: str) -> dict[str, str]:
    return {k: v.get(lang, v["zh-CN"]) for k, v in STRINGS.items()}


def safe_next(target: str | None) -> str | None:
    """A local path to go back to after signing in; anything else (other hosts, ``//x``) is dropped."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target if all(ch.isprintable() for ch in target) else None


def _page(request: Request, *, status: int = 200, error: str | None = None, next_: str | None = None,
          principal: object = None) -> HTMLResponse:
    resp = render(request, "signin.html", s=_strings(pick_lang(request)), error=error, next=next_ or "",
                  principal=principal)
    resp.status_code = status
    return resp


@router.get("/signin", response_class=HTMLResponse)
def signin_form(request: Request, principal: OptionalPrincipalDep,
                next_: Annotated[str | None, Query(alias="next", max_length=2000)] = None) -> HTMLResponse:
    """The sign-in form (or who is signed in, with a sign-out button)."""
    return _page(request, next_=safe_next(next_), principal=principal)


@router.post("/signin", response_class=HTMLResponse)
def signin_submit(
    request: Request,
    c: ContainerDep,
    username: Annotated[str, Form(max_length=120)] = "",
    password: Annotated[str, Form(max_length=4096)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
    next_: Annotated[str, Form(alias="next", max_length=2000)] = "",
) -> Response:
    """Check the password; on success set the session cookie and go to ``next`` or the role's home."""
    username = username.strip()
    enforce(request, f"login-ip:{client_ip(request)}", LOGIN_PER_MINUTE)
    enforce(request, f"login-user:{username.lower()}", LOGIN_PER_MINUTE)
    lang = pick_lang(request)
    if not csrf_valid(request, csrf_token):
        return _page(request, status=403, error=_strings(lang)["error.csrf"], next_=safe_next(next_))
    try:
        with c.uow() as s:
            principal, token = session_start(s, username=username, password=password, now=c.clock())
    except Unauthenticated:
        log.info("signin_failed", username=username, client=client_ip(request))
        return _page(request, status=401, error=_strings(lang)["error.credentials"], next_=safe_next(next_))
    log.info("signin", user_id=principal.user_id, role=principal.role, client=client_ip(request))
    resp = RedirectResponse(safe_next(next_) or _HOME.get(principal.role, "/"), status_code=303)
    set_cookie(resp, c.settings, SESSION_COOKIE, sign(c.settings.secret_key, "session", token),
                max_age=int(SESSION_TTL.total_seconds()))
    return resp


@router.post("/signout")
def signout(
    request: Request,
    c: ContainerDep,
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Revoke the session on the server and drop the cookie."""
    verify_csrf(request, csrf_token)
    token = session_token(request)
    if token:
        with c.uow() as s:
            session_end(s, token=token, now=c.clock())
    lang = "?lang=en" if pick_lang(request) == "en" else ""
    resp = RedirectResponse(f"/signin{lang}", status_code=303)
    resp.delete_cookie(cookie_name(SESSION_COOKIE, c.settings), path="/", httponly=True, samesite="lax",
                       secure=c.settings.environment == "production")
    return resp
