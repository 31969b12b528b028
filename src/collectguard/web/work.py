"""/work — the collector workbench (DESIGN §8): today's queue, a case, and the guard before every action.

Thin: parse the form, call one service (``services.workbench``, ``services.attempts``), render. The
case page also shows the collection-operations panel (``services.casework``: stops, hold,
complaints, approvals, repayment links, approved templates); its forms live in ``web.work_ops``.
Every page needs a signed-in user (the app-wide gate redirects a browser to /signin); every POST
carries the CSRF token (``csrf_input``), which the gate checks. A refused or invalid action shows
the case again with the reason, never a JSON problem; ids the caller may not see answer 404.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup, escape

from collectguard.api.deps import ContainerDep, PrincipalDep
from collectguard.domain.event import Channel, Purpose
from collectguard.errors import BadInput, CollectguardError, Denied
from collectguard.services.assess import finding_articles
from collectguard.services.attempts import RESULTS, contact_attempt_outcome
from collectguard.services.casework import case_ops, case_template_text
from collectguard.services.daily import daily_default_as_of
from collectguard.services.outcomes import PAYING_RESULTS, ptp_refusal
from collectguard.services.workbench import (
    NOTE_MAX,
    case_attempt_record,
    case_check,
    case_file,
    case_note_add,
    case_ptp_add,
    work_queue,
)
from collectguard.web import i18n_ops  # noqa: F401 - registers the staff pages' strings and filters
from collectguard.web.i18n import pick_lang
from collectguard.web.render import render

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
CHANNELS = get_args(Channel)
PURPOSES = get_args(Purpose)
MESSAGE_MAX = 1000
# The confirmations a redirect back to the case may ask for (work.done.<x>).
DONE = ("attempt", "outcome", "ptp", "note", "stop", "lift", "hold", "release", "approval", "decision", "paylink",
        "complaint", "legal")


def error_page(request: Request, exc: CollectguardError, *, principal: Any = None) -> HTMLResponse:
    """The staff pages' error page, with the status of the error (404, 403, 409, 422 …)."""
    resp = render(request, "work/error.html", error=exc, principal=principal)
    resp.status_code = exc.http_status
    return resp


def highlight(text: str, spans: list[tuple[int, int]]) -> Markup:
    """``text`` with each ``[start, end)`` span (code points) in ``<mark>``, numbered from 1 in order.

    Overlapping spans are merged into the first; a span inside one already marked only adds its number.
    """
    parts: list[str] = []
    pos = 0
    for start, end, n in sorted((a, b, i + 1) for i, (a, b) in enumerate(spans) if b > a):
        start = max(start, pos)
        link = f'<sup class="fn"><a href="#finding-{n}">[{n}]</a></sup>'
        if end <= start:
            parts.append(link)
            continue
        parts.append(f'{escape(text[pos:start])}<mark id="span-{n}">{escape(text[start:end])}</mark>{link}')
        pos = end
    parts.append(str(escape(text[pos:])))
    return Markup("".join(parts))  # noqa: S704 - each piece of text went through escape() above


@router.get("/work", response_class=HTMLResponse)
def queue_page(request: Request, c: ContainerDep, p: PrincipalDep,
               view: Annotated[str | None, Query(pattern="^(mine|all)$")] = None,
               page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> HTMLResponse:
    """Today's queue: planned actions of the cases the caller may see, by planned time."""
    try:
        data = work_queue(c, principal=p, mine=None if view is None else view == "mine",
                          limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    except CollectguardError as exc:
        return error_page(request, exc, principal=p)
    pages = max(1, -(-data["total"] // PAGE_SIZE))
    return render(request, "work/queue.html", principal=p, q=data, page=page, pages=pages)


def _case_page(request: Request, c: Any, p: Any, case_id: int, *, status: int = 200, **extra: Any) -> HTMLResponse:
    try:
        data = case_file(c, principal=p, case_id=case_id)
        ops = case_ops(c, principal=p, case_id=case_id, on=daily_default_as_of(c))
    except CollectguardError as exc:
        return error_page(request, exc, principal=p)
    lang = pick_lang(request)
    # Outcome codes that mean "someone pays" are offered only on contacts with a debtor (outcomes.ptp_refusal).
    jur = data["borrower"]["jurisdiction"]
    payers = {h["role"] for h in data["history"] if h["role"] and ptp_refusal(role=h["role"], jurisdiction=jur) is None}
    decision = extra.get("decision")
    if decision is not None:  # each citation with its instrument's name and the text it stands for
        extra["articles"] = [finding_articles(v, "zh" if lang == "zh-CN" else "en")
                             for v in decision["violations"]]
        message = (extra.get("form") or {}).get("message", "")
        extra["marked_message"] = highlight(message, [tuple(h["span"]) for h in decision.get("lint") or []])
    form = {"channel": "call", "recipient": "borrower", "time": data["local_now"], "purpose": "collect",
            "message": "", "template_id": "", **extra.pop("form", {})}
    resp = render(request, "work/case.html", principal=p, f=data, ops=ops, form=form, channels=CHANNELS,
                  purposes=PURPOSES, results=RESULTS, paying=PAYING_RESULTS, payers=payers, note_max=NOTE_MAX,
                  message_max=MESSAGE_MAX,
                  done=request.query_params.get("done") if request.query_params.get("done") in DONE else None,
                  **extra)
    resp.status_code = status
    return resp


@router.get("/work/cases/{case_id}", response_class=HTMLResponse)
def case_page(request: Request, case_id: int, c: ContainerDep, p: PrincipalDep) -> HTMLResponse:
    """One case: masked personal data, loan, schedule, payments, contacts, history, and the actions."""
    return _case_page(request, c, p, case_id)


@router.get("/work/cases/{case_id}/{action}")
def case_action_get(request: Request, case_id: int, action: str, p: PrincipalDep) -> RedirectResponse:
    """A GET on a form's address (the language link on a result page, a reload): back to the case."""
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"/work/cases/{case_id}{query}", 303)


@router.get("/work/attempts/{attempt_id}/outcome")
def outcome_get(request: Request, attempt_id: int, p: PrincipalDep) -> RedirectResponse:
    """A GET on the outcome form's address: to the queue (the attempt's case is not in the URL)."""
    return RedirectResponse("/work" + (f"?{request.url.query}" if request.url.query else ""), 303)


def _when(raw: str) -> dt.datetime | None:
    if not raw.strip():
        return None
    try:
        return dt.datetime.fromisoformat(raw.strip())
    except ValueError:
        raise BadInput("give a date and time, e.g. 2026-03-02T21:30", field="time") from None


Channel_ = Annotated[str, Form(max_length=16)]
Text_ = Annotated[str, Form(max_length=MESSAGE_MAX)]
TemplateId_ = Annotated[str, Form(max_length=20)]


def _message(c: Any, p: Any, case_id: int, template_id: str, message: str) -> str:
    """The message to judge and send: an approved template filled in for the case, or the typed text."""
    if not template_id.strip():
        return message
    if not template_id.strip().isdigit():
        raise BadInput("choose one of the approved templates", field="template_id")
    return case_template_text(c, principal=p, case_id=case_id, template_id=int(template_id), on=daily_default_as_of(c))


@router.post("/work/cases/{case_id}/check", response_class=HTMLResponse)
def case_check_submit(request: Request, case_id: int, c: ContainerDep, p: PrincipalDep,
                      channel: Channel_ = "call", recipient: Annotated[str, Form(max_length=40)] = "borrower",
                      time: Annotated[str, Form(max_length=40)] = "",
                      purpose: Annotated[str, Form(max_length=20)] = "collect", message: Text_ = "",
                      template_id: TemplateId_ = "") -> HTMLResponse:
    """The guard's answer for the planned contact (nothing is reserved; the decision is recorded)."""
    form = {"channel": channel, "recipient": recipient, "time": time, "purpose": purpose, "message": message,
            "template_id": template_id}
    try:
        message = form["message"] = _message(c, p, case_id, template_id, message)
        when = _when(time) or c.clock()
        result = case_check(c, principal=p, case_id=case_id, channel=channel, recipient=recipient, when=when,
                            purpose=purpose, message=message)
    except CollectguardError as exc:
        return _case_page(request, c, p, case_id, status=exc.http_status, form=form, error=exc.message)
    return _case_page(request, c, p, case_id, form=form, decision=result["decision"],
                      decision_id=result["decision_id"], checked=result["event"])


@router.post("/work/cases/{case_id}/attempts", response_class=HTMLResponse)
def case_attempt_submit(request: Request, case_id: int, c: ContainerDep, p: PrincipalDep,
                        channel: Channel_ = "call", recipient: Annotated[str, Form(max_length=40)] = "borrower",
                        time: Annotated[str, Form(max_length=40)] = "",
                        purpose: Annotated[str, Form(max_length=20)] = "collect", message: Text_ = "",
                        template_id: TemplateId_ = "") -> Response:
    """Reserve the contact (the guard judges it again, atomically); a refusal shows the decision."""
    form = {"channel": channel, "recipient": recipient, "time": time, "purpose": purpose, "message": message,
            "template_id": template_id}
    try:
        message = form["message"] = _message(c, p, case_id, template_id, message)
        out = case_attempt_record(c, principal=p, case_id=case_id, channel=channel, recipient=recipient,
                                  when=_when(time), purpose=purpose, message=message)
    except Denied as exc:
        return _case_page(request, c, p, case_id, status=403, form=form, decision=exc.detail.get("decision"),
                          decision_id=exc.detail.get("decision_id"), refused=True)
    except CollectguardError as exc:
        return _case_page(request, c, p, case_id, status=exc.http_status, form=form, error=exc.message)
    return RedirectResponse(f"/work/cases/{case_id}?done=attempt&attempt={out['attempt_id']}#history", 303)


@router.post("/work/attempts/{attempt_id}/outcome", response_class=HTMLResponse)
def attempt_outcome_submit(request: Request, attempt_id: int, c: ContainerDep, p: PrincipalDep,
                           case_id: Annotated[int, Form(ge=1)], result: Annotated[str, Form(max_length=32)]
                           ) -> Response:
    """Record what happened on an attempt (once)."""
    try:
        contact_attempt_outcome(c, principal=p, attempt_id=attempt_id, result=result)
    except CollectguardError as exc:
        return _case_page(request, c, p, case_id, status=exc.http_status, error=exc.message)
    return RedirectResponse(f"/work/cases/{case_id}?done=outcome#history", 303)


@router.post("/work/cases/{case_id}/ptp", response_class=HTMLResponse)
def ptp_submit(request: Request, case_id: int, c: ContainerDep, p: PrincipalDep,
               due_date: Annotated[str, Form(max_length=10)] = "", amount: Annotated[str, Form(max_length=20)] = ""
               ) -> Response:
    """Record a promise to pay."""
    try:
        try:
            due = dt.date.fromisoformat(due_date)
        except ValueError:
            raise BadInput("give a date, e.g. 2026-03-02", field="due_date") from None
        case_ptp_add(c, principal=p, case_id=case_id, due_date=due, amount=amount)
    except CollectguardError as exc:
        return _case_page(request, c, p, case_id, status=exc.http_status, error=exc.message)
    return RedirectResponse(f"/work/cases/{case_id}?done=ptp#ptp", 303)


@router.post("/work/cases/{case_id}/notes", response_class=HTMLResponse)
def note_submit(request: Request, case_id: int, c: ContainerDep, p: PrincipalDep,
                text: Annotated[str, Form(max_length=NOTE_MAX + 100)] = "") -> Response:
    """Add a note to the case (kept in the audit chain)."""
    try:
        case_note_add(c, principal=p, case_id=case_id, text=text)
    except CollectguardError as exc:
        return _case_page(request, c, p, case_id, status=exc.http_status, error=exc.message)
    return RedirectResponse(f"/work/cases/{case_id}?done=note#notes", 303)
