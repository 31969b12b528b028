"""/portal — the borrower portal (DESIGN §8): sign in with a one-time code, then the borrower's own
loans, every contact made about them with the guard's decision, consents (withdraw), the data copy,
complaints and payment-plan requests. Plain-language Chinese first (``?lang=en``), mobile first.

Thin: parse the form, call one service (``services.portal_signin``, ``services.portal``,
``services.portal_history``), render.

``/portal`` itself is a public path (``api.deps.PUBLIC_PATHS``): GET shows the sign-in form, or the
overview to a signed-in borrower; POST carries the sign-in steps (``step`` = ``send``, ``verify``,
``choose``) and ``signout``, and checks the CSRF token itself (``web.auth.verify_csrf`` semantics,
answered as a page). Everything under ``/portal/`` needs a session (the app-wide gate) and its POSTs
the CSRF token (checked by the gate). A foreign id answers 404, a staff member 403.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from collectguard.adapters.crypto import mask_phone
from collectguard.adapters.logging import get_logger
from collectguard.api.deps import (
    SESSION_COOKIE,
    ContainerDep,
    OptionalPrincipalDep,
    PrincipalDep,
    cookie_name,
    csrf_nonce,
    csrf_valid,
    session_token,
    set_cookie,
    sign,
    unsign,
)
from collectguard.api.ratelimit import client_ip, enforce
from collectguard.errors import BadInput, CollectguardError, Unauthenticated
from collectguard.services import portal as svc
from collectguard.services.accounts import session_end
from collectguard.services.portal_history import portal_contacts
from collectguard.services.portal_signin import (
    CODE_TTL,
    PORTAL_SESSION_TTL,
    PortalMatch,
    portal_code_request,
    portal_code_verify,
    portal_phone_key,
    portal_session_start,
)
from collectguard.web import i18n_portal  # noqa: F401 - registers the portal's strings
from collectguard.web.i18n import pick_lang, translator
from collectguard.web.render import render

router = APIRouter(include_in_schema=False)
log = get_logger("collectguard.portal")

SEND_PER_MINUTE_IP, SEND_PER_MINUTE_PHONE = 10, 3
VERIFY_PER_MINUTE_IP, VERIFY_PER_MINUTE_PHONE = 20, 10
CHOICE_TTL_S = 300
TEXT_MAX = 4000
Phone_ = Annotated[str, Form(max_length=40)]
Csrf_ = Annotated[str, Form(max_length=128)]


def _q(request: Request) -> str:
    return "?lang=en" if pick_lang(request) == "en" else ""


def _page(request: Request, name: str, *, status: int = 200, **ctx: Any) -> HTMLResponse:
    dev = request.app.state.container.settings.environment == "development"
    resp = render(request, f"portal/{name}", dev=dev, q=_q(request), **ctx)
    resp.status_code = status
    return resp


def _error(request: Request, exc: CollectguardError, principal: Any = None) -> HTMLResponse:
    return _page(request, "error.html", status=exc.http_status, error=exc, principal=principal)


def _signin(request: Request, *, status: int = 200, error: str | None = None, phone: str = "",
            principal: Any = None) -> HTMLResponse:
    return _page(request, "signin.html", status=status, error=error, phone=phone, principal=principal)


def _message(request: Request, exc: CollectguardError) -> str:
    """A plain-language message for a refused form: by field for bad input, else by kind, else the service's."""
    t = translator(pick_lang(request))
    field = getattr(exc, "field", None)
    for key in (f"portal.error.{field}" if field else "", f"portal.error.{exc.code}"):
        if key and t(key) != key:
            return str(t(key))
    return exc.message


def _limited(request: Request, key: str, per_minute: int) -> bool:
    try:
        enforce(request, key, per_minute)
    except HTTPException:
        return True
    return False


# ---------------------------------------------------------------- /portal: sign in, overview, sign out

@router.get("/portal", response_class=HTMLResponse)
def portal_home(request: Request, c: ContainerDep, p: OptionalPrincipalDep) -> HTMLResponse:
    """The overview for a signed-in borrower; otherwise the sign-in form."""
    if p is None or p.role != "borrower":
        return _signin(request, principal=p)
    try:
        data = svc.portal_overview(c, principal=p)
    except CollectguardError as exc:
        return _error(request, exc, p)
    return _page(request, "overview.html", principal=p, d=data, tab="overview")


@router.post("/portal", response_class=HTMLResponse)
def portal_post(
    request: Request,
    c: ContainerDep,
    step: Annotated[str, Form(max_length=16)] = "",
    phone: Phone_ = "",
    code: Annotated[str, Form(max_length=16)] = "",
    ticket: Annotated[str, Form(max_length=2000)] = "",
    borrower: Annotated[str, Form(max_length=20)] = "",
    csrf_token: Csrf_ = "",
) -> Response:
    """The sign-in steps and sign-out (a public path: the CSRF token is checked here)."""
    t = translator(pick_lang(request))
    if not csrf_valid(request, csrf_token):
        return _signin(request, status=403, error=t("portal.error.csrf"), phone=phone)
    if step == "send":
        return _send(request, c, phone)
    if step == "verify":
        return _verify(request, c, phone, code)
    if step == "choose":
        return _choose(request, c, ticket, borrower)
    if step == "signout":
        return _signout(request, c)
    return _signin(request, status=422, error=t("portal.error.step"), phone=phone)


def _send(request: Request, c: Any, phone: str) -> HTMLResponse:
    t = translator(pick_lang(request))
    try:
        key = portal_phone_key(c, phone)
    except BadInput:
        return _signin(request, status=422, error=t("portal.error.phone"), phone=phone)
    if _limited(request, f"portal-send-ip:{client_ip(request)}", SEND_PER_MINUTE_IP) or \
            _limited(request, f"portal-send:{key}", SEND_PER_MINUTE_PHONE):
        return _signin(request, status=429, error=t("portal.error.rate"), phone=phone)
    portal_code_request(c, phone=phone, lang=pick_lang(request))
    # The same page whether or not the number is on record: it tells nobody whose number a lender holds.
    return _page(request, "code.html", phone=phone.strip(), masked=mask_phone(phone),
                 minutes=int(CODE_TTL.total_seconds() // 60))


def _code_page(request: Request, phone: str, *, status: int, error: str) -> HTMLResponse:
    return _page(request, "code.html", status=status, phone=phone.strip(), masked=mask_phone(phone), error=error,
                 minutes=int(CODE_TTL.total_seconds() // 60))


def _verify(request: Request, c: Any, phone: str, code: str) -> Response:
    t = translator(pick_lang(request))
    try:
        key = portal_phone_key(c, phone)
    except BadInput:
        return _signin(request, status=422, error=t("portal.error.phone"), phone=phone)
    if _limited(request, f"portal-verify-ip:{client_ip(request)}", VERIFY_PER_MINUTE_IP) or \
            _limited(request, f"portal-verify:{key}", VERIFY_PER_MINUTE_PHONE):
        return _code_page(request, phone, status=429, error=t("portal.error.rate"))
    try:
        found = portal_code_verify(c, phone=phone, code=code)
    except Unauthenticated:
        log.info("portal_signin_failed", client=client_ip(request))
        return _code_page(request, phone, status=401, error=t("portal.error.code"))
    if len(found) == 1:
        return _start(request, c, found[0].borrower_id)
    return _chooser(request, c, found)


def _ticket(request: Request, c: Any, found: list[PortalMatch]) -> str:
    """A signed, short-lived list of the borrower records the code opened, bound to this browser."""
    nonce = csrf_nonce(request) or ""
    ids = "-".join(str(m.borrower_id) for m in found)
    expires = int(c.clock().timestamp()) + CHOICE_TTL_S
    return sign(c.settings.secret_key, "portal-choice", f"{expires}|{nonce}|{ids}")


def _chooser(request: Request, c: Any, found: list[PortalMatch]) -> HTMLResponse:
    return _page(request, "choose.html", found=found, ticket=_ticket(request, c, found))


def _choose(request: Request, c: Any, ticket: str, borrower: str) -> Response:
    t = translator(pick_lang(request))
    value = unsign(c.settings.secret_key, "portal-choice", ticket)
    parts = value.split("|") if value else []
    ok = (len(parts) == 3 and parts[0].isdigit() and int(parts[0]) > c.clock().timestamp()
          and parts[1] == (csrf_nonce(request) or "") and borrower in parts[2].split("-"))
    if not ok:
        return _signin(request, status=403, error=t("portal.error.choice"))
    return _start(request, c, int(borrower))


def _start(request: Request, c: Any, borrower_id: int) -> Response:
    try:
        principal, token = portal_session_start(c, borrower_id=borrower_id)
    except CollectguardError as exc:
        return _error(request, exc)
    log.info("portal_signin", user_id=principal.user_id, tenant_id=principal.tenant_id, client=client_ip(request))
    resp = RedirectResponse(f"/portal{_q(request)}", status_code=303)
    set_cookie(resp, c.settings, SESSION_COOKIE, sign(c.settings.secret_key, "session", token),
               max_age=int(PORTAL_SESSION_TTL.total_seconds()))
    return resp


def _signout(request: Request, c: Any) -> Response:
    token = session_token(request)
    if token:
        with c.uow() as s:
            session_end(s, token=token, now=c.clock())
    resp = RedirectResponse(f"/portal{_q(request)}", status_code=303)
    resp.delete_cookie(cookie_name(SESSION_COOKIE, c.settings), path="/", httponly=True, samesite="lax",
                       secure=c.settings.environment == "production")
    return resp


# ---------------------------------------------------------------- the signed-in pages

@router.get("/portal/loans/{loan_id}", response_class=HTMLResponse)
def loan_page(request: Request, loan_id: int, c: ContainerDep, p: PrincipalDep) -> HTMLResponse:
    """One loan: the schedule with what is paid, and the payments."""
    try:
        data = svc.portal_loan(c, principal=p, loan_id=loan_id)
    except CollectguardError as exc:
        return _error(request, exc, p)
    return _page(request, "loan.html", principal=p, d=data, tab="overview")


@router.get("/portal/contacts", response_class=HTMLResponse)
def contacts_page(request: Request, c: ContainerDep, p: PrincipalDep) -> HTMLResponse:
    """Every contact made or planned about the borrower, with the guard's decision and its legal basis."""
    try:
        data = portal_contacts(c, principal=p, lang=pick_lang(request))
    except CollectguardError as exc:
        return _error(request, exc, p)
    return _page(request, "contacts.html", principal=p, d=data, tab="contacts")


def _consents_page(request: Request, c: Any, p: Any, *, status: int = 200, **extra: Any) -> HTMLResponse:
    try:
        data = svc.portal_consents(c, principal=p)
    except CollectguardError as exc:
        return _error(request, exc, p)
    return _page(request, "consents.html", status=status, principal=p, d=data, tab="consents", **extra)


@router.get("/portal/consents", response_class=HTMLResponse)
def consents_page(request: Request, c: ContainerDep, p: PrincipalDep) -> HTMLResponse:
    """The borrower's consents, with a withdraw button on each one in force."""
    done = request.query_params.get("withdrawn")
    return _consents_page(request, c, p, withdrawn=int(done) if done and done.isdigit() else None)


@router.post("/portal/consents/{consent_id}/withdraw", response_class=HTMLResponse)
def consent_withdraw(request: Request, consent_id: int, c: ContainerDep, p: PrincipalDep) -> Response:
    """Withdraw a consent now (PIPL 15): the next guard decision already treats it as withdrawn."""
    try:
        svc.portal_consent_withdraw(c, principal=p, consent_id=consent_id)
    except CollectguardError as exc:
        if exc.http_status in (403, 404):
            return _error(request, exc, p)
        return _consents_page(request, c, p, status=exc.http_status, error=_message(request, exc))
    sep = "&" if _q(request) else "?"
    return RedirectResponse(f"/portal/consents{_q(request)}{sep}withdrawn={consent_id}#consent-{consent_id}", 303)


@router.get("/portal/data", response_class=HTMLResponse)
def data_page(request: Request, c: ContainerDep, p: PrincipalDep) -> HTMLResponse:
    """What the data copy holds, and the button that downloads it."""
    try:
        data = svc.portal_data_summary(c, principal=p)
    except CollectguardError as exc:
        return _error(request, exc, p)
    return _page(request, "data.html", principal=p, d=data, tab="data")


@router.post("/portal/data")
def data_download(request: Request, c: ContainerDep, p: PrincipalDep) -> Response:
    """The data copy (PIPL 45) as a JSON file; recorded as an access request and audited."""
    try:
        copy = svc.portal_data_copy(c, principal=p)
    except CollectguardError as exc:
        return _error(request, exc, p)
    day = c.clock().date().isoformat()
    return Response(svc.data_copy_json(copy), media_type="application/json; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="my-data-{day}.json"',
                             "Cache-Control": "no-store"})


def _complaints_page(request: Request, c: Any, p: Any, *, status: int = 200, **extra: Any) -> HTMLResponse:
    try:
        data = svc.portal_complaints(c, principal=p)
    except CollectguardError as exc:
        return _error(request, exc, p)
    form = {"case_id": "", "category": "", "text": "", **extra.pop("form", {})}
    return _page(request, "complaints.html", status=status, principal=p, d=data, tab="complaints", form=form,
                 text_max=TEXT_MAX, **extra)


@router.get("/portal/complaints", response_class=HTMLResponse)
def complaints_page(request: Request, c: ContainerDep, p: PrincipalDep) -> HTMLResponse:
    """The complaint form and the borrower's complaints."""
    return _complaints_page(request, c, p, filed=request.query_params.get("filed"))


@router.post("/portal/complaints", response_class=HTMLResponse)
def complaint_submit(request: Request, c: ContainerDep, p: PrincipalDep,
                     case_id: Annotated[str, Form(max_length=20)] = "",
                     category: Annotated[str, Form(max_length=32)] = "",
                     text: Annotated[str, Form(max_length=TEXT_MAX + 100)] = "") -> Response:
    """File a complaint: it lands in the compliance officers' queue."""
    form = {"case_id": case_id, "category": category, "text": text}
    try:
        if not case_id.isdigit():
            raise BadInput("choose the loan the complaint is about", field="case_id")
        out = svc.portal_complaint_file(c, principal=p, case_id=int(case_id), category=category, text=text)
    except CollectguardError as exc:
        if exc.http_status == 403:
            return _error(request, exc, p)
        return _complaints_page(request, c, p, status=exc.http_status, error=_message(request, exc), form=form)
    sep = "&" if _q(request) else "?"
    return RedirectResponse(f"/portal/complaints{_q(request)}{sep}filed={out['id']}", 303)


def _plans_page(request: Request, c: Any, p: Any, *, status: int = 200, **extra: Any) -> HTMLResponse:
    try:
        data = svc.portal_plans(c, principal=p)
    except CollectguardError as exc:
        return _error(request, exc, p)
    form = {"case_id": "", "installments": "6", "first_due": "", "reason": "", **extra.pop("form", {})}
    return _page(request, "plans.html", status=status, principal=p, d=data, tab="plans", form=form,
                 text_max=TEXT_MAX, **extra)


@router.get("/portal/plans", response_class=HTMLResponse)
def plans_page(request: Request, c: ContainerDep, p: PrincipalDep) -> HTMLResponse:
    """The payment-plan request form and the borrower's requests."""
    return _plans_page(request, c, p, requested=request.query_params.get("requested"))


@router.post("/portal/plans", response_class=HTMLResponse)
def plan_submit(request: Request, c: ContainerDep, p: PrincipalDep,
                case_id: Annotated[str, Form(max_length=20)] = "",
                installments: Annotated[str, Form(max_length=4)] = "",
                first_due: Annotated[str, Form(max_length=10)] = "",
                reason: Annotated[str, Form(max_length=TEXT_MAX + 100)] = "") -> Response:
    """Ask for a payment plan; staff decide it (maker-checker)."""
    form = {"case_id": case_id, "installments": installments, "first_due": first_due, "reason": reason}
    try:
        if not case_id.isdigit():
            raise BadInput("choose the loan", field="case_id")
        if not installments.isdigit():
            raise BadInput("a number of installments", field="installments")
        try:
            first = dt.date.fromisoformat(first_due)
        except ValueError:
            raise BadInput("a date, e.g. 2026-05-10", field="first_due") from None
        out = svc.portal_plan_request(c, principal=p, case_id=int(case_id), installments=int(installments),
                                      first_due=first, reason=reason)
    except CollectguardError as exc:
        if exc.http_status == 403:
            return _error(request, exc, p)
        return _plans_page(request, c, p, status=exc.http_status, error=_message(request, exc), form=form)
    sep = "&" if _q(request) else "?"
    return RedirectResponse(f"/portal/plans{_q(request)}{sep}requested={out['id']}", 303)
