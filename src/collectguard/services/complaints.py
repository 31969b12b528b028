"""Complaint tickets (投诉工单): filed in the portal, sent by API or imported as CSV, linked to a case,
each with a complaint-risk tag (``high``/``medium``/``low``) that strategies can read.

The risk tag is data-light on purpose: what the complaint is about (``RISK_BY_CATEGORY``) and where
it came from (a regulator's referral or the media is always ``high``). ``complaint_risk`` gives the
borrower's current tag — the highest of the open complaints and of those received in the last
``RECENT_DAYS`` — so a strategy can soften its cadence, keep a case in-house or route it to a
senior collector. Filing may also stop collection at once (``stop=True``: a case stop with reason
``complaint``, lifted when the complaint is resolved). Every step is audited.

CSV import (UTF-8, BOM allowed), header ``complaint_ref,loan_id,received_at,channel,category,text``:
``loan_id`` is the lender's loan id of the import; all-or-nothing, every bad row reported; a
``complaint_ref`` already on record is skipped, so re-importing a file is harmless.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from collectguard.adapters.db.models import Case, Complaint, Loan
from collectguard.adapters.db.models_ops import CollectionStop, ComplaintMeta
from collectguard.bootstrap import Container
from collectguard.errors import BadInput, Conflict, ImportRejected, NotFound
from collectguard.services.audit import audit_append
from collectguard.services.authz import Principal, ensure_visible, require, scope_tenant
from collectguard.services.stops import stop_create, stop_lift

__all__ = ["CATEGORIES", "CHANNELS", "complaint_file", "complaint_file_as", "complaint_resolve",
           "complaint_resolve_as", "complaint_risk", "complaint_view", "complaints_import_csv",
           "complaints_list_as"]

CATEGORIES = ("harassment", "third_party_contact", "privacy", "threat", "amount", "fees", "identity",
              "service", "other")
CHANNELS = ("portal", "phone", "email", "regulator", "media", "other")
RISK_BY_CATEGORY = {"harassment": "high", "third_party_contact": "high", "privacy": "high", "threat": "high",
                    "amount": "medium", "fees": "medium", "identity": "medium", "service": "low", "other": "low"}
HIGH_CHANNELS = frozenset({"regulator", "media"})  # 监管转办 / 媒体: escalated by definition
RECENT_DAYS = 90
_RANK = {"low": 1, "medium": 2, "high": 3}
CSV_COLUMNS = ("complaint_ref", "loan_id", "received_at", "channel", "category", "text")


def risk_of(category: str, channel: str) -> str:
    """The risk tag of a complaint about ``category`` that came through ``channel``."""
    return "high" if channel in HIGH_CHANNELS else RISK_BY_CATEGORY.get(category, "low")


def _check(category: str, channel: str, text: str) -> None:
    if category not in CATEGORIES:
        raise BadInput(f"expected one of {', '.join(CATEGORIES)}", field="category")
    if channel not in CHANNELS:
        raise BadInput(f"expected one of {', '.join(CHANNELS)}", field="channel")
    if not text.strip() or len(text) > 8000:
        raise BadInput("1–8000 characters", field="text")


def complaint_file(s: Session, *, tenant_id: int, case_id: int, category: str, text: str, channel: str = "portal",
                   source: str = "portal", ext_ref: str | None = None, received_at: dt.datetime | None = None,
                   stop: bool = False, on: dt.date | None = None, actor: str,
                   now: dt.datetime) -> Complaint:
    """File a complaint about a case; with ``stop`` collection stops from ``on`` until it is resolved."""
    _check(category, channel, text)
    case = s.get(Case, case_id)
    if case is None or case.tenant_id != tenant_id:
        raise NotFound("no such case")
    if ext_ref is not None and s.scalar(select(ComplaintMeta.complaint_id).where(
            ComplaintMeta.tenant_id == tenant_id, ComplaintMeta.ext_ref == ext_ref)):
        raise Conflict(f"complaint {ext_ref!r} is already on record")
    row = Complaint(tenant_id=tenant_id, borrower_id=case.borrower_id, case_id=case.id, channel=channel,
                    category=category, text=text, status="open", created_at=now)
    s.add(row)
    s.flush()
    risk = risk_of(category, channel)
    s.add(ComplaintMeta(complaint_id=row.id, tenant_id=tenant_id, ext_ref=ext_ref, source=source, risk=risk,
                        received_at=(received_at or now).astimezone(dt.UTC)))
    audit_append(s, tenant_id=tenant_id, actor=actor, action="complaint.file", subject=f"case:{case.id}", now=now,
                 payload={"borrower_id": case.borrower_id, "case_id": case.id, "complaint_id": row.id,
                          "category": category, "channel": channel, "source": source, "risk": risk,
                          "ext_ref": ext_ref, "stop": stop})
    if stop:
        stop_create(s, tenant_id=tenant_id, case_id=case.id, reason="complaint",
                    starts_on=on or now.date(), complaint_id=row.id, actor=actor, now=now,
                    note=f"complaint {row.id}")
    return row


def complaint_resolve(s: Session, *, tenant_id: int, complaint_id: int, resolution: str, actor: str,
                      now: dt.datetime) -> Complaint:
    """Close a complaint with its resolution; stops it caused are lifted (audited)."""
    row = s.get(Complaint, complaint_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound("no such complaint")
    if row.status != "open":
        raise Conflict("the complaint is already resolved")
    if not resolution.strip() or len(resolution) > 4000:
        raise BadInput("1–4000 characters", field="resolution")
    row.status, row.resolved_at = "resolved", now
    meta = s.get(ComplaintMeta, row.id)
    if meta is not None:
        meta.resolution = resolution
    lifted = []
    for stop in s.scalars(select(CollectionStop).where(CollectionStop.complaint_id == row.id,
                                                       CollectionStop.lifted_at.is_(None))):
        stop_lift(s, tenant_id=tenant_id, stop_id=stop.id, actor=actor, now=now, note="complaint resolved")
        lifted.append(stop.id)
    audit_append(s, tenant_id=tenant_id, actor=actor, action="complaint.resolve", subject=f"case:{row.case_id}",
                 now=now, payload={"borrower_id": row.borrower_id, "complaint_id": row.id, "stops_lifted": lifted})
    return row


def complaint_risk(s: Session, *, borrower_id: int, at: dt.datetime) -> str | None:
    """The borrower's complaint-risk tag at ``at``: the highest risk of open complaints and of those
    received in the last ``RECENT_DAYS`` days; ``None`` without any."""
    at = at.astimezone(dt.UTC)  # stored in UTC: SQLite keeps no offset, so instants compare as UTC text
    since = at - dt.timedelta(days=RECENT_DAYS)
    risks = s.scalars(select(ComplaintMeta.risk).join(Complaint, Complaint.id == ComplaintMeta.complaint_id)
                      .where(Complaint.borrower_id == borrower_id, ComplaintMeta.received_at <= at,
                             (Complaint.status == "open") | (ComplaintMeta.received_at >= since)))
    return max(risks, key=lambda r: _RANK.get(r, 0), default=None)


def complaint_view(row: Complaint, meta: ComplaintMeta | None) -> dict[str, Any]:
    """A complaint as JSON."""
    return {"id": row.id, "case_id": row.case_id, "borrower_id": row.borrower_id, "channel": row.channel,
            "category": row.category, "text": row.text, "status": row.status,
            "risk": meta.risk if meta else None, "source": meta.source if meta else None,
            "ext_ref": meta.ext_ref if meta else None, "resolution": meta.resolution if meta else None,
            "created_at": row.created_at.isoformat(),
            "resolved_at": row.resolved_at.isoformat() if row.resolved_at else None}


def complaints_import_csv(s: Session, *, tenant_id: int, text: str, actor: str, now: dt.datetime) -> dict[str, Any]:
    """Import complaint tickets from CSV (see the module docstring): ``{imported, skipped}``."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise BadInput(f"missing columns: {', '.join(missing)}", field="header")
    rows, errors = [], []
    for n, r in enumerate(reader, start=2):
        ref, loan_ref = (r.get("complaint_ref") or "").strip(), (r.get("loan_id") or "").strip()
        case = s.scalar(select(Case).join(Loan, Loan.id == Case.loan_id).where(
            Loan.tenant_id == tenant_id, Loan.ext_id == loan_ref).order_by(Case.status != "open", Case.id.desc()))
        try:
            received = dt.datetime.fromisoformat((r.get("received_at") or "").strip())
        except ValueError:
            received = None
        problems = [("complaint_ref", "required, at most 64 characters") if not ref or len(ref) > 64 else None,
                    ("loan_id", f"no case for loan {loan_ref!r}") if case is None else None,
                    ("received_at", "an ISO date-time with offset") if received is None or received.tzinfo is None
                    else None]
        try:
            _check((r.get("category") or "").strip(), (r.get("channel") or "").strip(), r.get("text") or "")
        except BadInput as exc:
            problems.append((exc.field or "text", exc.message.split(": ", 1)[-1]))
        errors += [{"row": n, "column": col, "reason": why} for col, why in (p for p in problems if p)]
        rows.append((ref, case, received, r))
    if errors:
        raise ImportRejected(f"{len({e['row'] for e in errors})} bad row(s); nothing imported", errors=errors)
    known = set(s.scalars(select(ComplaintMeta.ext_ref).where(ComplaintMeta.tenant_id == tenant_id,
                                                              ComplaintMeta.ext_ref.in_([r[0] for r in rows]))))
    imported = 0
    for ref, case, received, r in rows:
        if ref in known:
            continue
        assert case is not None  # rows without a case were reported above
        known.add(ref)
        complaint_file(s, tenant_id=tenant_id, case_id=case.id, category=r["category"].strip(), text=r["text"],
                       channel=r["channel"].strip(), source="csv", ext_ref=ref, received_at=received, actor=actor,
                       now=now)
        imported += 1
    return {"imported": imported, "skipped": len(rows) - imported}


# ---------------------------------------------------------------- for the API (principal-checked)

def complaint_file_as(c: Container, *, principal: Principal, case_id: int, on: dt.date, **kw: Any) -> dict[str, Any]:
    """File a complaint on a visible case: the borrower from the portal, staff by API (``complaint.create``).

    Only staff may stop collection while filing; a borrower's complaint is routed to compliance.
    """
    require(principal, "complaint.create")
    if principal.role == "borrower":
        kw.update(channel="portal", source="portal", stop=False, ext_ref=None)
    with c.uow() as s:
        case = ensure_visible(s.get(Case, case_id), principal, session=s)
        row = complaint_file(s, tenant_id=case.tenant_id, case_id=case.id, on=on,
                             actor=principal.actor, now=c.clock(), **{"source": "api", **kw})
        return complaint_view(row, s.get(ComplaintMeta, row.id))


def complaint_resolve_as(c: Container, *, principal: Principal, complaint_id: int, resolution: str) -> dict[str, Any]:
    """``complaint_resolve`` for a compliance officer (``complaint.resolve``)."""
    require(principal, "complaint.resolve")
    with c.uow() as s:
        row = complaint_resolve(s, tenant_id=principal.tenant_id, complaint_id=complaint_id, resolution=resolution,
                                actor=principal.actor, now=c.clock())
        return complaint_view(row, s.get(ComplaintMeta, row.id))


def complaints_list_as(c: Container, *, principal: Principal, case_id: int | None = None, status: str | None = None,
                       limit: int = 100, offset: int = 0) -> dict[str, Any]:
    """Complaints the caller may read (``complaint.read``; a borrower sees their own), newest first."""
    require(principal, "complaint.read")
    joined = select(Complaint, ComplaintMeta).outerjoin(ComplaintMeta, ComplaintMeta.complaint_id == Complaint.id)
    stmt = scope_tenant(joined, Complaint, principal)  # type: ignore[type-var]  # a two-entity Select
    if case_id is not None:
        stmt = stmt.where(Complaint.case_id == case_id)
    if status is not None:
        stmt = stmt.where(Complaint.status == status)
    with c.uow(write=False) as s:
        total = int(s.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
        rows = s.execute(stmt.order_by(Complaint.id.desc()).limit(min(limit, 500)).offset(offset))
        return {"total": total, "items": [complaint_view(r, m) for r, m in rows]}
