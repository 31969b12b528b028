"""/compliance — QA (质检) and message templates on the dashboard (docs/operations.md, "On the workbench").

- ``/compliance/qa``: the human-review sampling queue (every call with violations, and a random
  share of the clean ones: ``services.qa``), a review form per call, and the collector scorecards
  with a chart of violations per 100 calls. ``qa.run`` (compliance, team leads, auditors).
- ``/compliance/templates``: the tenant's template versions; authors (``template.write``) create
  and lint drafts, compliance (``template.approve``) approves or rejects — never their own.

Thin: parse, call one principal-checked service, render; an error shows in the page with its status.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from collectguard.api.deps import ContainerDep, PrincipalDep
from collectguard.errors import BadInput, CollectguardError
from collectguard.services import qa, templates
from collectguard.services.authz import Principal
from collectguard.web import charts
from collectguard.web.i18n import pick_lang, translator
from collectguard.web.render import render
from collectguard.web.work import error_page

router = APIRouter(include_in_schema=False)
Short = Annotated[str, Form(max_length=200)]
QUEUE_SHOWN = 100


# ---------------------------------------------------------------- QA (质检)

def _qa_page(request: Request, c: Any, p: Principal, *, status: int = 200, error: str | None = None,
             done: bool = False) -> HTMLResponse:
    reviewed = request.query_params.get("reviewed") == "1"
    try:
        queue = qa.qa_queue_as(c, principal=p, include_reviewed=reviewed, limit=QUEUE_SHOWN)
        cards = qa.qa_scorecards_as(c, principal=p)
    except CollectguardError as exc:
        return error_page(request, exc, principal=p)
    t = translator(pick_lang(request))
    chart = charts.hbar_chart(title=t("cmp.qa.chart"), desc=t("cmp.qa.chart.desc").format(n=len(cards)),
                              items=[(x["collector_id"] or "–", x["violations_per_100_calls"], None) for x in cards],
                              table_label=t("cmp.chart.table"), value_label=t("cmp.qa.per100")) if cards else None
    resp = render(request, "compliance/qa.html", principal=p, queue=queue, cards=cards, chart=chart,
                  reviewed=reviewed, error=error, done=done or request.query_params.get("done") == "review")
    resp.status_code = status
    return resp


@router.get("/compliance/qa", response_class=HTMLResponse)
def qa_page(request: Request, c: ContainerDep, p: PrincipalDep) -> HTMLResponse:
    """The review queue (worst first) and the collector scorecards."""
    return _qa_page(request, c, p)


@router.post("/compliance/qa/reviews", response_model=None)
def qa_review_submit(request: Request, c: ContainerDep, p: PrincipalDep, qa_id: Short = "", score: Short = "",
                     notes: Annotated[str, Form(max_length=4000)] = "") -> Response:
    """A reviewer's score (0–100) and notes for one sampled call."""
    try:
        if not qa_id.isdigit():
            raise BadInput("choose a call from the queue", field="qa_id")
        if not score.strip().isdigit():
            raise BadInput("must be a whole number from 0 to 100", field="score")
        qa.qa_review_as(c, principal=p, qa_id=int(qa_id), score=int(score.strip()), notes=notes)
    except CollectguardError as exc:
        return _qa_page(request, c, p, status=exc.http_status, error=exc.message)
    return RedirectResponse("/compliance/qa?done=review", 303)


# ---------------------------------------------------------------- message templates

def _templates_page(request: Request, c: Any, p: Principal, *, status: int = 200, error: str | None = None,
                    form: dict[str, str] | None = None) -> HTMLResponse:
    try:
        rows = templates.templates_list_as(c, principal=p)
    except CollectguardError as exc:
        return error_page(request, exc, principal=p)
    resp = render(request, "compliance/templates.html", principal=p, rows=rows, error=error, form=form or {},
                  variables=templates.VARIABLES, channels=templates.CHANNELS,
                  done=request.query_params.get("done") if request.query_params.get("done") in (
                      "create", "lint", "review") else None)
    resp.status_code = status
    return resp


@router.get("/compliance/templates", response_class=HTMLResponse)
def templates_page(request: Request, c: ContainerDep, p: PrincipalDep) -> HTMLResponse:
    """Template versions, newest first within each code, with their lint findings and review."""
    return _templates_page(request, c, p)


@router.post("/compliance/templates", response_model=None)
def template_create_submit(request: Request, c: ContainerDep, p: PrincipalDep, code: Short = "",
                           language: Short = "zh", channel: Short = "sms", audience: Short = "debtor",
                           jurisdiction: Short = "CN", body: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """A new draft (the next version of ``code`` in ``language``)."""
    form: dict[str, Any] = {"code": code, "language": language, "channel": channel, "audience": audience,
                            "jurisdiction": jurisdiction, "body": body}
    try:
        if jurisdiction not in ("CN", "US", "EU"):
            raise BadInput("expected one of CN, US, EU", field="jurisdiction")
        templates.template_act_as(c, principal=p, action="create", **form)
    except CollectguardError as exc:
        return _templates_page(request, c, p, status=exc.http_status, error=exc.message, form=form)
    return RedirectResponse("/compliance/templates?done=create", 303)


@router.post("/compliance/templates/{template_id}/lint", response_model=None)
def template_lint_submit(request: Request, template_id: int, c: ContainerDep, p: PrincipalDep) -> Response:
    """Lint a draft with the guard's lint."""
    try:
        templates.template_act_as(c, principal=p, action="lint", template_id=template_id)
    except CollectguardError as exc:
        return _templates_page(request, c, p, status=exc.http_status, error=exc.message)
    return RedirectResponse(f"/compliance/templates?done=lint#tpl-{template_id}", 303)


@router.post("/compliance/templates/{template_id}/review", response_model=None)
def template_review_submit(request: Request, template_id: int, c: ContainerDep, p: PrincipalDep,
                           decision: Short = "", note: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """Approve or reject a linted version (compliance; never the author)."""
    try:
        if decision not in ("approve", "reject"):
            raise BadInput("approve or reject", field="decision")
        templates.template_act_as(c, principal=p, action="review", template_id=template_id,
                                  approve=decision == "approve", note=note)
    except CollectguardError as exc:
        return _templates_page(request, c, p, status=exc.http_status, error=exc.message)
    return RedirectResponse(f"/compliance/templates?done=review#tpl-{template_id}", 303)
