"""/work — collection operations on the workbench (docs/operations.md, "On the workbench").

The forms of the case page's operations panel (reveal a number, stops, the hold, approvals,
repayment links, complaints, legal actions), the approvals queue (maker-checker) and the allocation
dry run. Thin: parse the form, call one principal-checked service, then go back to the case (303)
or show it again with the error in the page, with the error's status (403, 404, 409, 422). Every
POST carries the CSRF token (the app-wide gate checks it). Fields are taken as text and parsed
here, so that a bad value is a message in the page, never a JSON problem.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from collectguard.api.deps import ContainerDep, PrincipalDep
from collectguard.errors import BadInput, CollectguardError
from collectguard.services import allocation, approvals, complaints, paylinks, stops, templates
from collectguard.services.authz import Principal
from collectguard.services.casework import case_reveal
from collectguard.services.daily import daily_default_as_of
from collectguard.web import charts
from collectguard.web.i18n import pick_lang, translator
from collectguard.web.render import render
from collectguard.web.work import _case_page, error_page

router = APIRouter(include_in_schema=False)

Short = Annotated[str, Form(max_length=200)]
Long = Annotated[str, Form(max_length=4000)]
CHANGES_SHOWN = 100  # moves listed under the dry run (the API gives up to 1,000)


def _back(case_id: int, done: str, anchor: str) -> RedirectResponse:
    return RedirectResponse(f"/work/cases/{case_id}?done={done}#{anchor}", 303)


def _fail(request: Request, c: Any, p: Principal, case_id: int, exc: CollectguardError, **form: Any) -> HTMLResponse:
    return _case_page(request, c, p, case_id, status=exc.http_status, error=exc.message, **form)


def _date(raw: str, field: str) -> dt.date | None:
    if not raw.strip():
        return None
    try:
        return dt.date.fromisoformat(raw.strip())
    except ValueError:
        raise BadInput("give a date, e.g. 2026-05-01", field=field) from None


def _int(raw: str, field: str) -> int | None:
    if not raw.strip():
        return None
    if not raw.strip().isdigit():
        raise BadInput("give a whole number", field=field)
    return int(raw.strip())


def _target(raw: str) -> int | None:
    """``borrower`` -> None (the borrower's own number); ``contact:<id>`` -> the contact's id."""
    if raw == "borrower":
        return None
    kind, _, n = raw.partition(":")
    if kind != "contact" or not n.isdigit():
        raise BadInput("choose the borrower or one of the listed contacts", field="target")
    return int(n)


def schedule_parse(text: str) -> list[dict[str, str]]:
    """A plan typed one installment a line, ``2026-05-01 300.00`` (or with a comma), as the services want it."""
    out = []
    for n, line in enumerate((x for x in text.replace("，", ",").splitlines() if x.strip()), start=1):
        parts = line.replace(",", " ").split()
        if len(parts) != 2:
            raise BadInput(f"line {n}: write a date and an amount, e.g. 2026-05-01 300.00", field="schedule")
        out.append({"due_date": parts[0], "amount": parts[1]})
    if not out:
        raise BadInput("a plan needs at least one installment", field="schedule")
    return out


# ---------------------------------------------------------------- revealing a number

@router.post("/work/cases/{case_id}/reveal", response_class=HTMLResponse)
def reveal_submit(request: Request, case_id: int, c: ContainerDep, p: PrincipalDep, target: Short = "borrower",
                  reason: Short = "") -> HTMLResponse:
    """The clear number, shown once in this answer (never stored in the page's address); the reason is audited."""
    try:
        out = case_reveal(c, principal=p, case_id=case_id, target=target, reason=reason)
    except CollectguardError as exc:
        return _fail(request, c, p, case_id, exc, reveal_form={"target": target, "reason": reason})
    resp = _case_page(request, c, p, case_id, revealed=out)
    resp.headers["Cache-Control"] = "no-store"
    return resp


# ---------------------------------------------------------------- stops and the hold

@router.post("/work/cases/{case_id}/stops", response_model=None)
def stop_submit(request: Request, case_id: int, c: ContainerDep, p: PrincipalDep, reason: Short = "",
                scope: Short = "case", target: Short = "borrower", starts_on: Short = "", ends_on: Short = "",
                note: Long = "") -> Response:
    """Stop collection on the case or on one number (停催)."""
    try:
        kw: dict[str, Any] = {"reason": reason, "scope": scope, "note": note,
                              "starts_on": _date(starts_on, "starts_on"), "ends_on": _date(ends_on, "ends_on")}
        if scope == "number":
            kw["contact_id"] = _target(target)
        stops.stop_create_as(c, principal=p, case_id=case_id, on=daily_default_as_of(c), **kw)
    except CollectguardError as exc:
        return _fail(request, c, p, case_id, exc)
    return _back(case_id, "stop", "ops-stops")


@router.post("/work/stops/{stop_id}/lift", response_model=None)
def stop_lift_submit(request: Request, stop_id: int, c: ContainerDep, p: PrincipalDep, case_id: Short = "",
                     note: Long = "") -> Response:
    """Lift a stop (compliance); back to the case the form was on."""
    if not case_id.isdigit():
        return error_page(request, BadInput("the form names no case", field="case_id"), principal=p)
    try:
        stops.stop_lift_as(c, principal=p, stop_id=stop_id, note=note)
    except CollectguardError as exc:
        return _fail(request, c, p, int(case_id), exc)
    return _back(int(case_id), "lift", "ops-stops")


@router.post("/work/cases/{case_id}/hold", response_model=None)
def hold_submit(request: Request, case_id: int, c: ContainerDep, p: PrincipalDep, reason: Long = "") -> Response:
    """Hold the case (留案): it leaves its collector or agency until released."""
    try:
        stops.case_hold_as(c, principal=p, case_id=case_id, reason=reason, on=daily_default_as_of(c))
    except CollectguardError as exc:
        return _fail(request, c, p, case_id, exc)
    return _back(case_id, "hold", "ops-stops")


@router.post("/work/cases/{case_id}/hold/release", response_model=None)
def hold_release_submit(request: Request, case_id: int, c: ContainerDep, p: PrincipalDep) -> Response:
    """Release the hold: the case goes back to allocation."""
    try:
        stops.case_hold_release_as(c, principal=p, case_id=case_id)
    except CollectguardError as exc:
        return _fail(request, c, p, case_id, exc)
    return _back(case_id, "release", "ops-stops")


# ---------------------------------------------------------------- waivers, plans, extensions (maker-checker)

@router.post("/work/cases/{case_id}/approvals", response_model=None)
def approval_submit(request: Request, case_id: int, c: ContainerDep, p: PrincipalDep, kind: Short = "",
                    reason: Long = "", amount: Short = "", days: Short = "", schedule: Long = "",
                    waive_rest: Short = "") -> Response:
    """Ask for a waiver (amount), an extension (days) or a plan (one installment a line)."""
    form = {"kind": kind, "reason": reason, "amount": amount, "days": days, "schedule": schedule,
            "waive_rest": bool(waive_rest)}
    try:
        kw: dict[str, Any] = {"kind": kind, "reason": reason}
        if kind == "waiver":
            kw["amount"] = amount.strip() or None
        elif kind == "extension":
            kw["days"] = _int(days, "days")
        elif kind == "plan":
            kw |= {"schedule": schedule_parse(schedule), "waive_rest": bool(waive_rest)}
        approvals.approval_request_as(c, principal=p, case_id=case_id, on=daily_default_as_of(c), **kw)
    except CollectguardError as exc:
        return _fail(request, c, p, case_id, exc, approval_form=form)
    return _back(case_id, "approval", "ops-approvals")


@router.post("/work/approvals/{request_id}/decision", response_model=None)
def decision_submit(request: Request, request_id: int, c: ContainerDep, p: PrincipalDep, decision: Short = "",
                    note: Long = "", case_id: Short = "") -> Response:
    """Approve or reject a request (never one's own; within the role's limits). Back to the case or the queue."""
    back = int(case_id) if case_id.isdigit() else None
    try:
        if decision not in ("approve", "reject"):
            raise BadInput("approve or reject", field="decision")
        approvals.approval_decide_as(c, principal=p, request_id=request_id, approve=decision == "approve",
                                     note=note, on=daily_default_as_of(c))
    except CollectguardError as exc:
        if back is not None:
            return _fail(request, c, p, back, exc)
        return _approvals_page(request, c, p, status=exc.http_status, error=exc.message)
    if back is not None:
        return _back(back, "decision", "ops-approvals")
    return RedirectResponse("/work/approvals?done=decision", 303)


@router.get("/work/approvals", response_class=HTMLResponse)
def approvals_page(request: Request, c: ContainerDep, p: PrincipalDep) -> HTMLResponse:
    """Requests waiting for a checker, and the latest decisions of the tenant."""
    return _approvals_page(request, c, p)


def _approvals_page(request: Request, c: Any, p: Principal, *, status: int = 200,
                    error: str | None = None) -> HTMLResponse:
    try:
        pending = approvals.approvals_list_as(c, principal=p, status="pending", limit=200)
        recent = [r for r in approvals.approvals_list_as(c, principal=p, limit=100) if r["status"] != "pending"]
    except CollectguardError as exc:
        return error_page(request, exc, principal=p)
    done = request.query_params.get("done") == "decision"
    resp = render(request, "work/approvals.html", principal=p, pending=pending, recent=recent[:50], error=error,
                  done=done)
    resp.status_code = status
    return resp


# ---------------------------------------------------------------- repayment links, complaints, legal actions

@router.post("/work/cases/{case_id}/pay-links", response_model=None)
def paylink_submit(request: Request, case_id: int, c: ContainerDep, p: PrincipalDep,
                   ttl_hours: Short = "72") -> Response:
    """A signed repayment link and code for the case, valid ``ttl_hours``."""
    try:
        paylinks.paylink_create_as(c, principal=p, case_id=case_id, ttl_hours=_int(ttl_hours, "ttl_hours") or 72)
    except CollectguardError as exc:
        return _fail(request, c, p, case_id, exc)
    return _back(case_id, "paylink", "ops-paylinks")


@router.post("/work/cases/{case_id}/complaints", response_model=None)
def complaint_submit(request: Request, case_id: int, c: ContainerDep, p: PrincipalDep, category: Short = "",
                     channel: Short = "phone", text: Annotated[str, Form(max_length=8000)] = "",
                     stop: Short = "") -> Response:
    """File a complaint the borrower made to staff (optionally stopping collection until it is resolved)."""
    try:
        complaints.complaint_file_as(c, principal=p, case_id=case_id, on=daily_default_as_of(c), category=category,
                                     text=text, channel=channel, stop=bool(stop))
    except CollectguardError as exc:
        return _fail(request, c, p, case_id, exc)
    return _back(case_id, "complaint", "ops-complaints")


@router.post("/work/cases/{case_id}/legal-actions", response_model=None)
def legal_submit(request: Request, case_id: int, c: ContainerDep, p: PrincipalDep, kind: Short = "lawsuit",
                 filed_on: Short = "", court: Short = "", case_number: Short = "") -> Response:
    """Record a lawsuit or arbitration filed for the case (compliance, admin)."""
    try:
        filed = _date(filed_on, "filed_on")
        if filed is None:
            raise BadInput("give the filing date", field="filed_on")
        templates.legal_action_record_as(c, principal=p, case_id=case_id, kind=kind, filed_on=filed, court=court,
                                         case_number=case_number)
    except CollectguardError as exc:
        return _fail(request, c, p, case_id, exc)
    return _back(case_id, "legal", "ops-legal")


# ---------------------------------------------------------------- allocation (分案): dry run, then apply

def _distribution_chart(request: Request, plan: dict[str, Any]) -> Any:
    t = translator(pick_lang(request))
    rows = plan["distribution"]
    names = [r["name"] or t("ops.alloc.unassigned") for r in rows]
    buckets = sorted({b for r in rows for b in r["by_bucket"]})
    series = [(b, [r["by_bucket"].get(b, 0) for r in rows]) for b in buckets] or [(t("ops.alloc.cases"), [0])]
    return charts.bar_chart(title=t("ops.alloc.chart"), desc=t("ops.alloc.chart.desc").format(
        cases=plan["cases"], holders=len(rows)), categories=names or ["–"], series=series, stacked=True,
        table_label=t("cmp.chart.table"), height=240)


def _allocation_page(request: Request, c: Any, p: Principal, *, status: int = 200, plan: dict[str, Any] | None = None,
                     applied: dict[str, Any] | None = None, error: str | None = None) -> HTMLResponse:
    try:
        rules = allocation.allocation_rules_read_as(c, principal=p)
    except CollectguardError as exc:
        return error_page(request, exc, principal=p)
    shown = plan or applied
    resp = render(request, "work/allocation.html", principal=p, rules=rules, plan=plan, applied=applied,
                  error=error, chart=_distribution_chart(request, shown) if shown else None,
                  changes=(shown or {}).get("changes", [])[:CHANGES_SHOWN])
    resp.status_code = status
    return resp


@router.get("/work/allocation", response_class=HTMLResponse)
def allocation_page(request: Request, c: ContainerDep, p: PrincipalDep) -> HTMLResponse:
    """The rules in force and the dry-run button (team leads, admins)."""
    return _allocation_page(request, c, p)


@router.post("/work/allocation/dry-run", response_class=HTMLResponse)
def allocation_dry_run(request: Request, c: ContainerDep, p: PrincipalDep) -> HTMLResponse:
    """The distribution the rules would give today: a table and a chart; nothing is written."""
    try:
        plan = allocation.allocation_plan_as(c, principal=p, as_of=daily_default_as_of(c))
    except CollectguardError as exc:
        return _allocation_page(request, c, p, status=exc.http_status, error=exc.message)
    return _allocation_page(request, c, p, plan=plan)


@router.post("/work/allocation/apply", response_class=HTMLResponse)
def allocation_apply(request: Request, c: ContainerDep, p: PrincipalDep,
                     plan_sha256: Annotated[str, Form(max_length=64)] = "") -> HTMLResponse:
    """Apply the plan just shown; refused (409) when the portfolio or the rules changed since."""
    try:
        if not plan_sha256:
            raise BadInput("run the dry run first", field="plan_sha256")
        out = allocation.allocation_apply_as(c, principal=p, as_of=daily_default_as_of(c),
                                             expect_plan_sha256=plan_sha256)
    except CollectguardError as exc:
        return _allocation_page(request, c, p, status=exc.http_status, error=exc.message)
    return _allocation_page(request, c, p, applied=out)
