"""Read models of the compliance dashboard (DESIGN §8 ``/compliance``), one tenant at a time.

- **Blocked actions by rule per day**: the guard's ``deny`` decisions (dry-run checks, refused
  attempts), by violated rule and by day in ``HOME_ZONE``. A decision that broke two rules counts
  once for each, so the per-rule bars may add up to more than the number of decisions.
- **Attempts against caps**: stored attempts per recipient-local day; how many debtor-days reached
  1, 2, 3 … connected calls and how many number-days 1 … 6 dials, beside the caps the rule pack
  sets (read from the pack, never restated here).
- **Complaints**: complaint rows and dispute / hardship requests per week.
- **Roll and cure rates by agency**: cure rates from ``services.analytics``; the roll-forward rate
  of a holder is the share of the cases it held in the range whose loan moved to a worse bucket
  while it held them, after the day it got them (``bucket_history``; the move that opened the case
  is not the holder's), which analytics does not break down by holder.
Each view scopes by ``tenant_id`` in SQL; nothing here reads another tenant's rows.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import Date, String, bindparam, func, literal, select, text
from sqlalchemy.orm import Session

from collectguard.adapters.db.models import AuditRecord, Borrower, Complaint, ContactAttempt, Decision, Tenant
from collectguard.adapters.db.models_ledger import AgencyContract, CaseRequest
from collectguard.bootstrap import Container
from collectguard.domain.delinquency import DEFAULT_BUCKETS
from collectguard.errors import NotFound
from collectguard.rules import Guard
from collectguard.services.analytics import recovery_analytics
from collectguard.services.authz import Principal, require
from collectguard.services.daily import HOME_ZONE, daily_default_as_of
from collectguard.services.facts import CONNECTED

__all__ = ["CAP_RULES", "agencies_list", "audit_verify_tenant", "dashboard_overview", "decision_get", "decisions_list",
           "evidence_bundle", "pack_caps",
           "window"]

CAP_RULES = {"connected": "cn.connected_calls_cap", "dials": "cn.attempts_same_number_cap"}
_RANKS = {name: i for i, name in enumerate(DEFAULT_BUCKETS.names)} | {"closed": -1}
_RANK_SQL = "CASE {col} " + " ".join(f"WHEN '{b}' THEN {r}" for b, r in _RANKS.items()) + " ELSE -1 END"
# S608: only the fixed bucket ranks are formatted in; values are bound.
_ROLLED = f"""
SELECT a.agency_tenant_id, a.user_id IS NOT NULL AS in_house, COUNT(DISTINCT c.id),
       COUNT(DISTINCT CASE WHEN h.id IS NOT NULL THEN c.id END)
FROM collection_case c
JOIN case_assignment a ON a.case_id = c.id AND a.assigned_on <= :u AND (a.ended_on IS NULL OR a.ended_on >= :f)
LEFT JOIN bucket_history h ON h.loan_id = c.loan_id AND h.as_of >= :f AND h.as_of <= :u
     AND h.as_of > a.assigned_on AND (a.ended_on IS NULL OR h.as_of <= a.ended_on) AND h.from_bucket IS NOT NULL
     AND {_RANK_SQL.format(col="h.to_bucket")} > {_RANK_SQL.format(col="h.from_bucket")}
WHERE c.tenant_id = :t GROUP BY a.agency_tenant_id, a.user_id IS NOT NULL"""  # noqa: S608


def window(c: Container, days: int) -> tuple[dt.date, dt.date]:
    """The last ``days`` days up to today (``HOME_ZONE``), both ends included."""
    today = daily_default_as_of(c)
    return today - dt.timedelta(days=max(days, 1) - 1), today


def _utc_bounds(first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(first, dt.time(), HOME_ZONE).astimezone(dt.UTC)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), HOME_ZONE).astimezone(dt.UTC)
    return start, end


def _home_day(s: Session, col: Any) -> Any:
    if s.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone(str(HOME_ZONE), col))
    # SQLite keeps naive UTC text; a fixed offset is exact because Asia/Shanghai has no daylight saving.
    offset = int((dt.datetime.now(HOME_ZONE).utcoffset() or dt.timedelta()).total_seconds() // 60)
    return func.date(col, f"{offset:+d} minutes")


def _days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def pack_caps(jurisdiction: str = "CN") -> dict[str, int]:
    """The daily caps of the pack in force: ``{"connected": 3, "dials": 6}`` for CN."""
    pack = Guard.default().packs.get(jurisdiction)
    rules = {r["id"]: r for r in (pack.describe()["rules"] if pack is not None else [])}
    out: dict[str, int] = {}
    for key, rule_id in CAP_RULES.items():
        values = (rules.get(rule_id) or {}).get("params", {}).get("max") or []
        if values:
            out[key] = int(values[-1]["value"])
    return out


def _blocked(s: Session, tenant_id: int, first: dt.date, last: dt.date) -> dict[str, Any]:
    start, end = _utc_bounds(first, last)
    day = _home_day(s, Decision.created_at)
    rows = s.execute(select(day, Decision.rules, func.count()).where(
        Decision.tenant_id == tenant_id, Decision.verdict == "deny", Decision.created_at >= start,
        Decision.created_at < end).group_by(day, Decision.rules))
    per: dict[str, Counter[str]] = defaultdict(Counter)
    decisions = 0
    for d, rules, n in rows:
        decisions += int(n)
        for rule in (rules or "unknown").split():
            per[rule][str(d)] += int(n)
    days = _days(first, last)
    totals = {r: sum(c.values()) for r, c in per.items()}
    order = sorted(totals, key=lambda r: (-totals[r], r))
    return {"days": [d.isoformat() for d in days], "decisions": decisions, "totals": {r: totals[r] for r in order},
            "series": {r: [per[r].get(d.isoformat(), 0) for d in days] for r in order}}


def _caps(s: Session, tenant_id: int, first: dt.date, last: dt.date) -> dict[str, Any]:
    a = ContactAttempt
    scope = (a.tenant_id == tenant_id, a.local_date >= first, a.local_date <= last)
    per_day = Counter({str(d): int(n) for d, n in s.execute(
        select(a.local_date, func.count()).where(*scope).group_by(a.local_date))})
    calls = (*scope, a.channel == "call")
    connected = (select(func.count().label("n")).where(*calls, a.recipient_role == "borrower",
                                                       a.contact_id.is_(None), a.outcome.in_(CONNECTED))
                 .group_by(a.borrower_id, a.local_date).subquery())
    dials = select(func.count().label("n")).where(*calls).group_by(a.recipient_key, a.local_date).subquery()

    def spread(sub: Any) -> dict[int, int]:
        return {int(n): int(k) for n, k in s.execute(select(sub.c.n, func.count()).group_by(sub.c.n))}

    return {"days": [d.isoformat() for d in _days(first, last)],
            "attempts": [per_day.get(d.isoformat(), 0) for d in _days(first, last)],
            "connected": spread(connected), "dials": spread(dials), "caps": pack_caps()}


def _week(d: dt.date) -> str:
    return (d - dt.timedelta(days=d.weekday())).isoformat()


def _complaints(s: Session, tenant_id: int, first: dt.date, last: dt.date) -> dict[str, Any]:
    start, end = _utc_bounds(first, last)
    weeks = sorted({_week(d) for d in _days(first, last)})
    per: dict[str, Counter[str]] = defaultdict(Counter)
    status: Counter[str] = Counter()
    for at, category, st in s.execute(select(Complaint.created_at, Complaint.category, Complaint.status).where(
            Complaint.tenant_id == tenant_id, Complaint.created_at >= start, Complaint.created_at < end)):
        per[f"complaint.{category}"][_week(_utc(at).astimezone(HOME_ZONE).date())] += 1
        status[st] += 1
    for at, kind, st in s.execute(select(CaseRequest.opened_at, CaseRequest.kind, CaseRequest.status).where(
            CaseRequest.tenant_id == tenant_id, CaseRequest.opened_at >= start, CaseRequest.opened_at < end)):
        per[f"request.{kind}"][_week(_utc(at).astimezone(HOME_ZONE).date())] += 1
        status[st] += 1
    return {"weeks": weeks, "series": {k: [per[k].get(w, 0) for w in weeks] for k in sorted(per)},
            "total": sum(status.values()), "open": status.get("open", 0)}


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t


def _agencies(s: Session, tenant_id: int, first: dt.date, last: dt.date) -> list[dict[str, Any]]:
    rec = recovery_analytics(s, tenant_id=tenant_id, date_from=first, date_to=last)
    stmt = text(_ROLLED).bindparams(bindparam("f", type_=Date), bindparam("u", type_=Date))
    rolled = {("agency", ag) if ag is not None else ("in_house" if in_house else "none", None): (int(n), int(r))
              for ag, in_house, n, r in s.execute(stmt, {"t": tenant_id, "f": first, "u": last})}
    names = dict(s.execute(select(Tenant.id, Tenant.name).where(Tenant.kind == "agency")).all())
    rows = []
    for a in rec["by_agency"]:
        held, rolls = rolled.get(("agency", a["agency_tenant_id"]), (0, 0))
        rows.append({"holder": names.get(a["agency_tenant_id"], f"#{a['agency_tenant_id']}"), "kind": "agency",
                     "cases": a["cases"], "cure_rate": a["cure_rate"], "recovered": a["recovered"],
                     "roll_rate": round(rolls / held, 4) if held else None})
    cases = sum(x["cases"] for x in rec["by_collector"])
    cured = sum(x["cured"] for x in rec["by_collector"])
    held, rolls = rolled.get(("in_house", None), (0, 0))
    if cases or held:
        rows.append({"holder": None, "kind": "in_house", "cases": cases,
                     "cure_rate": round(cured / cases, 4) if cases else None, "recovered": None,
                     "roll_rate": round(rolls / held, 4) if held else None})
    return rows


def dashboard_overview(c: Container, *, principal: Principal, days: int = 30) -> dict[str, Any]:
    """Every chart of the dashboard for the caller's tenant over the last ``days`` days."""
    require(principal, "dashboard.compliance")
    first, last = window(c, days)
    t = principal.tenant_id
    with c.uow(write=False) as s:
        return {"from": first.isoformat(), "to": last.isoformat(), "blocked": _blocked(s, t, first, last),
                "caps": _caps(s, t, first, last), "complaints": _complaints(s, t, first, last),
                "agencies": _agencies(s, t, first, last)}


def decisions_list(c: Container, *, principal: Principal, rule: str | None = None, verdict: str | None = None,
                   day: dt.date | None = None, limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """The tenant's decisions, newest first, optionally of one rule, verdict or day (``HOME_ZONE``)."""
    require(principal, "decision.read")
    stmt = select(Decision, Borrower.ext_id).outerjoin(Borrower, Borrower.id == Decision.borrower_id).where(
        Decision.tenant_id == principal.tenant_id)
    if rule:
        pattern = "% " + rule.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + " %"
        padded = literal(" ", String) + Decision.rules + literal(" ", String)
        stmt = stmt.where(padded.like(pattern, escape="\\"))
    if verdict in ("allow", "deny"):
        stmt = stmt.where(Decision.verdict == verdict)
    if day is not None:
        start, end = _utc_bounds(day, day)
        stmt = stmt.where(Decision.created_at >= start, Decision.created_at < end)
    with c.uow(write=False) as s:
        total = int(s.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
        rows = s.execute(stmt.order_by(Decision.id.desc()).limit(min(limit, 200)).offset(offset))
        items = [{"id": d.id, "at": _utc(d.created_at), "verdict": d.verdict, "rules": d.rules.split(),
                  "channel": (d.event or {}).get("channel"), "time": (d.event or {}).get("time"),
                  "role": ((d.event or {}).get("recipient") or {}).get("role"), "pack": d.pack,
                  "borrower": ext} for d, ext in rows]
    return {"total": total, "offset": offset, "items": items}


def decision_get(c: Container, *, principal: Principal, decision_id: int) -> dict[str, Any]:
    """One decision of the tenant: the event as judged and the result (``NotFound`` otherwise)."""
    require(principal, "decision.read")
    with c.uow(write=False) as s:
        d = s.get(Decision, decision_id)
        if d is None or d.tenant_id != principal.tenant_id:
            raise NotFound("no such decision")
        ext = s.scalar(select(Borrower.ext_id).where(Borrower.id == d.borrower_id)) if d.borrower_id else None
        attempt = s.scalar(select(ContactAttempt.id).where(ContactAttempt.decision_id == d.id))
        return {"id": d.id, "at": _utc(d.created_at), "verdict": d.verdict, "pack": d.pack,
                "pack_version": d.pack_version, "event": d.event, "result": d.result, "borrower": ext,
                "attempt_id": attempt}


def agencies_list(c: Container, *, principal: Principal) -> list[dict[str, Any]]:
    """Every agency tenant, with the caller's contract with it (if any) and the open cases it holds."""
    require(principal, "dashboard.compliance")
    with c.uow(write=False) as s:
        contracts = {k.agency_tenant_id: k for k in s.scalars(
            select(AgencyContract).where(AgencyContract.lender_tenant_id == principal.tenant_id))}
        held = dict(s.execute(text(
            "SELECT agency_tenant_id, COUNT(*) FROM collection_case WHERE tenant_id = :t AND status = 'open' "
            "AND agency_tenant_id IS NOT NULL GROUP BY agency_tenant_id"), {"t": principal.tenant_id}).all())
        out = []
        for t in s.scalars(select(Tenant).where(Tenant.kind == "agency").order_by(Tenant.code)):
            k = contracts.get(t.id)
            out.append({"id": t.id, "code": t.code, "name": t.name, "licensed": t.licensed,
                        "open_cases": int(held.get(t.id, 0)),
                        "contract": None if k is None else {
                            "capacity": k.capacity, "processing_contract": k.processing_contract,
                            "active": k.active, "since": _utc(k.created_at).date()}})
        return out


def audit_verify_tenant(c: Container, *, principal: Principal) -> dict[str, Any]:
    """Verify the audit chains of the caller's tenant and report (never raises for a broken chain).

    One chain at a time in this process: the web server's threads must not fork verification workers.
    """
    require(principal, "audit.verify")
    from collectguard.services.audit_verify import audit_verify_report

    own = f"t{principal.tenant_id}"
    with c.uow(write=False) as s:
        chains = sorted(s.scalars(select(AuditRecord.chain).where(
            (AuditRecord.chain == own) | AuditRecord.chain.like(own + ".%")).distinct()))
    reports = [audit_verify_report(c, chain=ch, workers=1) for ch in chains]
    faults = [f for r in reports for f in r["faults"]]
    return {"status": "broken" if faults else "intact", "chains": len(chains), "faults": faults,
            "records": sum(r["records"] for r in reports), "checkpoints": max((r["checkpoints"] for r in reports),
                                                                             default=0),
            "heads": [h for r in reports for h in r["heads"]], "seconds": round(sum(r["seconds"] for r in reports), 3),
            "verified_at": c.clock().astimezone(dt.UTC).isoformat(timespec="seconds")}


def evidence_bundle(c: Container, *, principal: Principal, borrower_ext_id: str) -> tuple[str, bytes]:
    """The evidence bundle (zip) about one borrower of the caller's tenant: ``(file name, bytes)``."""
    require(principal, "audit.export")
    import tempfile
    from pathlib import Path

    from collectguard.services.evidence import audit_export

    ext = borrower_ext_id.strip()
    name = f"evidence-{''.join(ch for ch in ext if ch.isalnum() or ch in '-_')[:64] or 'borrower'}.zip"
    with tempfile.TemporaryDirectory(prefix="cg-evidence-") as tmp:
        out = Path(tmp) / name
        audit_export(c, borrower_ext_id=ext, tenant_code=principal.tenant_code, out=out, actor=principal.actor,
                     now=c.clock())
        return name, out.read_bytes()
