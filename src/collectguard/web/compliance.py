"""/compliance — the compliance dashboard (DESIGN §8): charts, decisions, audit, evidence, clauses, agencies.

Thin: parse, call one service (``services.dashboard``, ``services.clauses``), render. Charts are
drawn here from the read models (``web.charts``: SVG on the server, a data table beside each).
Each page checks its own permission in the service: the dashboard ``dashboard.compliance``,
decisions ``decision.read``, verification ``audit.verify``, evidence ``audit.export``, the clause
lint ``clauses.lint``; a collector gets a 403 page.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from collectguard.api.deps import ContainerDep, PrincipalDep
from collectguard.errors import BadInput, CollectguardError
from collectguard.services.authz import require
from collectguard.services.clauses import MAX_LINT_CHARS, clauses_lint
from collectguard.services.dashboard import (
    agencies_list,
    audit_verify_tenant,
    dashboard_overview,
    decision_get,
    decisions_list,
    evidence_bundle,
)
from collectguard.web import charts
from collectguard.web.i18n import pick_lang, translator
from collectguard.web.render import render
from collectguard.web.work import error_page, highlight

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
TOP_RULES = 6  # rules drawn in their own colour; the rest are summed as "other"
CLAUSE_FORM_MAX = 60_000  # characters accepted from the web form (the CLI and API take up to MAX_LINT_CHARS)


def _page(request: Request, name: str, p: Any, *, status: int = 200, **ctx: Any) -> HTMLResponse:
    resp = render(request, name, principal=p, **ctx)
    resp.status_code = status
    return resp


def _charts(request: Request, d: dict[str, Any]) -> dict[str, Markup]:
    t = translator(pick_lang(request))
    rl = lambda r: _rule_name(t, r)  # noqa: E731
    table = t("cmp.chart.table")
    b = d["blocked"]
    top = list(b["series"])[:TOP_RULES]
    series = [(rl(r), b["series"][r]) for r in top]
    rest = [sum(col) for col in zip(*[b["series"][r] for r in list(b["series"])[TOP_RULES:]], strict=True)]
    if rest:
        series.append((t("cmp.other"), rest))
    lang = "" if pick_lang(request) == "zh-CN" else "&lang=en"
    out = {
        "blocked": charts.bar_chart(title=t("cmp.chart.blocked"), desc=t("cmp.chart.blocked.desc").format(
            n=b["decisions"], first=d["from"], last=d["to"]), categories=b["days"], series=series or
            [(t("cmp.none"), [0] * len(b["days"]))], stacked=True, table_label=table),
        "by_rule": charts.hbar_chart(title=t("cmp.chart.by_rule"), desc=t("cmp.chart.by_rule.desc"),
                                     items=[(_short_rule(t, r), n, f"/compliance/decisions?verdict=deny&rule={r}{lang}")
                                            for r, n in b["totals"].items()],
                                     table_label=table, value_label=t("cmp.count")),
    }
    caps = d["caps"]
    out["attempts"] = charts.line_chart(
        title=t("cmp.chart.attempts"), desc=t("cmp.chart.attempts.desc").format(n=sum(caps["attempts"])),
        categories=caps["days"], series=[(t("cmp.attempts"), caps["attempts"])], table_label=table,
        width=1100, height=220)  # full width: a wider drawing, so the text keeps its size
    for key in ("connected", "dials"):
        cap = caps["caps"].get(key)
        spread = caps[key]
        top_n = max([*spread, (cap or 0) + 1, 1])
        cats = [str(i) for i in range(1, top_n + 1)]
        out[key] = charts.bar_chart(
            title=t(f"cmp.chart.{key}"), desc=t(f"cmp.chart.{key}.desc").format(cap=cap if cap else "–"),
            categories=cats, series=[(t(f"cmp.{key}.days"), [spread.get(i, 0) for i in range(1, top_n + 1)])],
            marker=(cap - 1, t("cmp.cap").format(cap=cap)) if cap else None, table_label=table, height=220)
    cm = d["complaints"]
    out["complaints"] = charts.bar_chart(
        title=t("cmp.chart.complaints"), desc=t("cmp.chart.complaints.desc").format(n=cm["total"], open=cm["open"]),
        categories=cm["weeks"], series=[(_complaint_name(t, k), v) for k, v in cm["series"].items()] or
        [(t("cmp.none"), [0] * len(cm["weeks"]))], stacked=True, table_label=table, height=220)
    ag = d["agencies"]
    names = [a["holder"] or t("cmp.in_house") for a in ag]
    out["agencies"] = charts.bar_chart(
        title=t("cmp.chart.agencies"), desc=t("cmp.chart.agencies.desc"), categories=names or [t("cmp.none")],
        series=[(t("cmp.cure_rate"), [a["cure_rate"] for a in ag] or [0]),
                (t("cmp.roll_rate"), [a["roll_rate"] for a in ag] or [0])],
        fmt=charts.pct, table_label=table, height=220)
    return out


def _rule_name(t: Any, rule: str) -> str:
    name = t(f"rule.{rule}")
    return rule if name == f"rule.{rule}" else f"{name} ({rule})"


def _short_rule(t: Any, rule: str) -> str:
    name = t(f"rule.{rule}")
    return rule if name == f"rule.{rule}" else name


def _complaint_name(t: Any, key: str) -> str:
    name = t(f"cmp.kind.{key}")
    return key if name == f"cmp.kind.{key}" else name


@router.get("/compliance", response_class=HTMLResponse)
def dashboard_page(request: Request, c: ContainerDep, p: PrincipalDep,
                   days: Annotated[int, Query(ge=7, le=366)] = 30) -> HTMLResponse:
    """Blocked actions by rule, attempts against caps, complaints, roll and cure rates by agency."""
    try:
        data = dashboard_overview(c, principal=p, days=days)
    except CollectguardError as exc:
        return error_page(request, exc, principal=p)
    return _page(request, "compliance/dashboard.html", p, d=data, charts=_charts(request, data), days=days)


@router.get("/compliance/decisions", response_class=HTMLResponse)
def decisions_page(request: Request, c: ContainerDep, p: PrincipalDep,
                   rule: Annotated[str | None, Query(max_length=80)] = None,
                   verdict: Annotated[str | None, Query(pattern="^(allow|deny)?$")] = None,
                   day: dt.date | None = None, page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> HTMLResponse:
    """The tenant's guard decisions, filtered by rule, verdict and day (the charts link here)."""
    try:
        data = decisions_list(c, principal=p, rule=rule or None, verdict=verdict or None, day=day,
                              limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    except CollectguardError as exc:
        return error_page(request, exc, principal=p)
    return _page(request, "compliance/decisions.html", p, data=data, rule=rule or "", verdict=verdict or "",
                 day=day.isoformat() if day else "", page=page, pages=max(1, -(-data["total"] // PAGE_SIZE)))


@router.get("/compliance/decisions/{decision_id}", response_class=HTMLResponse)
def decision_page(request: Request, decision_id: int, c: ContainerDep, p: PrincipalDep) -> HTMLResponse:
    """One decision: the event as the guard saw it, and each violation with its citations."""
    try:
        d = decision_get(c, principal=p, decision_id=decision_id)
    except CollectguardError as exc:
        return error_page(request, exc, principal=p)
    event_json = json.dumps(d["event"], ensure_ascii=False, indent=2, sort_keys=True)
    return _page(request, "compliance/decision.html", p, d=d, event_json=event_json)


@router.get("/compliance/audit", response_class=HTMLResponse)
def audit_page(request: Request, p: PrincipalDep) -> HTMLResponse:
    """The audit-chain verification page (the button posts)."""
    try:
        require(p, "audit.verify")
    except CollectguardError as exc:
        return error_page(request, exc, principal=p)
    return _page(request, "compliance/audit.html", p, report=None)


@router.post("/compliance/audit", response_class=HTMLResponse)
def audit_submit(request: Request, c: ContainerDep, p: PrincipalDep) -> HTMLResponse:
    """Verify the tenant's chains now and show the result."""
    try:
        report = audit_verify_tenant(c, principal=p)
    except CollectguardError as exc:
        return error_page(request, exc, principal=p)
    return _page(request, "compliance/audit.html", p, report=report)


@router.get("/compliance/evidence", response_class=HTMLResponse)
def evidence_page(request: Request, p: PrincipalDep) -> HTMLResponse:
    """The evidence-export form."""
    try:
        require(p, "audit.export")
    except CollectguardError as exc:
        return error_page(request, exc, principal=p)
    return _page(request, "compliance/evidence.html", p, borrower="", error=None)


@router.post("/compliance/evidence", response_model=None)
def evidence_submit(request: Request, c: ContainerDep, p: PrincipalDep,
                    borrower: Annotated[str, Form(max_length=64)] = "") -> Response:
    """The signed evidence bundle about one borrower, as a zip download."""
    try:
        if not borrower.strip():
            raise BadInput("give the borrower's id", field="borrower")
        name, data = evidence_bundle(c, principal=p, borrower_ext_id=borrower)
    except CollectguardError as exc:
        return _page(request, "compliance/evidence.html", p, status=exc.http_status, borrower=borrower, error=exc)
    return Response(data, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@router.get("/compliance/clauses", response_class=HTMLResponse)
def clauses_page(request: Request, p: PrincipalDep) -> HTMLResponse:
    """The clause lint: paste a contract or privacy-policy text."""
    try:
        require(p, "clauses.lint")
    except CollectguardError as exc:
        return error_page(request, exc, principal=p)
    return _page(request, "compliance/clauses.html", p, text="", result=None, limit=CLAUSE_FORM_MAX)


@router.post("/compliance/clauses", response_class=HTMLResponse)
def clauses_submit(request: Request, p: PrincipalDep,
                   text: Annotated[str, Form(max_length=min(CLAUSE_FORM_MAX, MAX_LINT_CHARS))] = "") -> HTMLResponse:
    """Findings of the lint, each span highlighted in the text."""
    try:
        require(p, "clauses.lint")
        clean = text.replace("\r\n", "\n").removeprefix("\ufeff")
        if not clean.strip():
            raise BadInput("the text is empty", field="text")
        result = clauses_lint(clean)
    except CollectguardError as exc:
        return _page(request, "compliance/clauses.html", p, status=exc.http_status, text=text, result=None,
                     error=exc, limit=CLAUSE_FORM_MAX)
    marked = highlight(clean, [tuple(f["span"]) for f in result["findings"]])
    return _page(request, "compliance/clauses.html", p, text=text, result=result, marked=marked,
                 limit=CLAUSE_FORM_MAX)


@router.get("/compliance/agencies", response_class=HTMLResponse)
def agencies_page(request: Request, c: ContainerDep, p: PrincipalDep) -> HTMLResponse:
    """Collection agencies and the tenant's contracts with them."""
    try:
        rows = agencies_list(c, principal=p)
    except CollectguardError as exc:
        return error_page(request, exc, principal=p)
    return _page(request, "compliance/agencies.html", p, agencies=rows)
