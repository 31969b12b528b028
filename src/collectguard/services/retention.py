"""``retention run``: anonymise the personal data of claims whose retention period has run out.

Periods are data (``policy/retention.yaml``, each citing its catalogue row); a borrower expires
when no case is open, nothing is outstanding, and the jurisdiction's longest period has passed
since the last activity. Rows are kept and only their personal content is removed, so the numbers
(how many attempts, which verdicts) stay for statistics; audit payloads are replaced by their
redaction marker, which keeps every chain hash valid (ADR 0002).
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from collectguard.adapters.crypto import PiiCipher
from collectguard.adapters.db.models import (
    AuditRecord,
    Borrower,
    Case,
    Complaint,
    Contact,
    ContactAttempt,
    Decision,
    Loan,
)
from collectguard.adapters.db.models_outbox import OutboxMessage
from collectguard.adapters.db.models_qa import QaResultRow
from collectguard.errors import BadInput
from collectguard.services.audit import audit_append
from collectguard.services.audit_borrower import borrower_audit_records, borrower_file, payload_borrower_index
from collectguard.services.audit_proof import REDACTED_LEN, redacted_payload, redaction_digest

if TYPE_CHECKING:
    from collectguard.bootstrap import Container

ERASED = "erased"  # the look-up hash of an erased phone number: matches no real HMAC


@cache
def retention_policy() -> dict[str, Any]:
    """The retention periods as data (``policy/retention.yaml``)."""
    text = resources.files("collectguard.policy").joinpath("retention.yaml").read_text("utf-8")
    return dict(yaml.safe_load(text))


def retention_period(jurisdiction: str, applies_to: str = "collection_records") -> dict[str, Any]:
    """The governing period for a jurisdiction: the longest applicable one, with every citation."""
    pack = retention_policy()["jurisdictions"].get(jurisdiction)
    if pack is None:
        raise BadInput(f"no retention policy for jurisdiction {jurisdiction!r}", field="jurisdiction")
    rows = [p for p in pack["periods"] if p["applies_to"] == applies_to]
    years = max(p["years"] for p in rows)
    return {
        "years": years,
        "rules": [p["id"] for p in rows],
        "citations": sorted({c for p in rows for c in p["citations"]}),
    }


def _add_years(d: dt.date, years: int) -> dt.date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February into a common year
        return d.replace(year=d.year + years, day=28)


def _day(v: Any) -> dt.date | None:
    if v is None:
        return None
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    return dt.date.fromisoformat(str(v)[:10])


def retention_candidates(session: Session, *, as_of: dt.date, borrower_id: int | None = None) -> list[dict[str, Any]]:
    """Borrowers not yet erased (or just one), with claim state, last activity and expiry date."""
    b = Borrower
    open_cases = select(func.count()).where(Case.borrower_id == b.id, Case.status == "open").scalar_subquery()
    closed_on = select(func.max(Case.closed_on)).where(Case.borrower_id == b.id).scalar_subquery()
    last_attempt = select(func.max(ContactAttempt.planned_at)).where(ContactAttempt.borrower_id == b.id)
    last_complaint = select(func.max(Complaint.created_at)).where(Complaint.borrower_id == b.id)
    # A loan the daily run never valued counts as owed: keep the data rather than guess.
    owed = (
        select(func.count())
        .where(
            Loan.borrower_id == b.id,
            or_(Loan.outstanding > 0, and_(Loan.outstanding.is_(None), Loan.bucket != "closed")),
        )
        .scalar_subquery()
    )
    q = select(
        b.id,
        b.tenant_id,
        b.jurisdiction,
        b.created_at,
        open_cases,
        closed_on,
        last_attempt.scalar_subquery(),
        last_complaint.scalar_subquery(),
        owed,
    ).where(b.phone_hmac != ERASED)
    if borrower_id is not None:
        q = q.where(b.id == borrower_id)
    out = []
    for bid, tid, jur, created, n_open, closed, attempt, complaint, n_owed in session.execute(q):
        days = [d for d in map(_day, (closed, attempt, complaint)) if d is not None]
        last = max(days) if days else _day(created)
        assert last is not None
        period = retention_period(jur)
        expires = _add_years(last, period["years"])
        claim_open = bool(n_open or n_owed)
        out.append(
            {
                "borrower_id": bid,
                "tenant_id": tid,
                "jurisdiction": jur,
                "claim_open": claim_open,
                "last_activity": last.isoformat(),
                "expires_on": expires.isoformat(),
                "expired": not claim_open and expires <= as_of,
                "citations": period["citations"],
            }
        )
    return out


def contacts_erase(session: Session, cipher: PiiCipher, contacts: list[Contact]) -> int:
    """Overwrite the contacts' names and numbers; they can no longer be reached or matched."""
    n = 0
    for ct in contacts:
        if ct.phone_hmac == ERASED:
            continue
        ct.name_enc, ct.phone_enc, ct.phone_hmac = cipher.encrypt(""), cipher.encrypt(""), ERASED
        ct.no_contact_requested = True  # an erased contact must never be dialled again
        n += 1
    return n


def borrower_anonymise(
    session: Session,
    cipher: PiiCipher,
    borrower_id: int,
    *,
    payload_index: dict[int, list[int]] | None = None,
) -> dict[str, int]:
    """Remove every piece of personal content held about the borrower; returns counts per kind."""
    f = borrower_file(session, borrower_id)
    counts = {"contacts": contacts_erase(session, cipher, f.contacts)}
    res = session.execute(
        update(ContactAttempt)
        .where(ContactAttempt.borrower_id == borrower_id, ContactAttempt.message.is_not(None))
        .values(message=None)
    )
    counts["attempt_messages"] = int(res.rowcount or 0)  # type: ignore[attr-defined]
    counts["decision_texts"] = sum(_decision_scrub(d) for d in f.decisions)
    counts["complaint_texts"] = 0
    for cp in f.complaints:
        if cp.text:
            cp.text, counts["complaint_texts"] = "", counts["complaint_texts"] + 1
    counts["qa_transcripts"] = _qa_scrub(session, cipher, [c.id for c in f.cases])
    counts["outbox_messages"] = _outbox_scrub(session, [a.id for a in f.attempts])
    counts["audit_payloads"] = 0
    for rec in borrower_audit_records(session, f, payload_index=payload_index):
        if redaction_digest(rec.payload) is None:
            rec.payload = redacted_payload(rec.payload)
            counts["audit_payloads"] += 1
    b = f.borrower
    b.name_enc, b.phone_enc, b.phone_hmac = cipher.encrypt(""), cipher.encrypt(""), ERASED
    b.id_number_enc = b.id_number_hmac = None
    counts["borrowers"] = 1
    session.flush()
    return counts


def _qa_scrub(session: Session, cipher: PiiCipher, case_ids: list[int]) -> int:
    """Blank the stored transcripts of the borrower's cases and the quoted text of their findings;
    the rules, scores and the transcript's SHA-256 stay (what was found, not what was said)."""
    n = 0
    for i in range(0, len(case_ids), 500):
        for row in session.scalars(select(QaResultRow).where(QaResultRow.case_id.in_(case_ids[i:i + 500]))):
            if row.result.get("redacted"):
                continue
            result = dict(row.result)
            for key in ("findings", "warnings", "signals"):
                result[key] = [{k: v for k, v in dict(x).items() if k != "text"}
                               for x in result.get(key) or () if isinstance(x, dict)]
            row.result, row.transcript_enc = {**result, "redacted": True}, cipher.encrypt("")
            n += 1
    return n


def _outbox_scrub(session: Session, attempt_ids: list[int]) -> int:
    """Blank the message bodies the outbox still holds for the borrower's attempts."""
    n = 0
    for i in range(0, len(attempt_ids), 500):
        subjects = [f"contact_attempt:{a}" for a in attempt_ids[i:i + 500]]
        for msg in session.scalars(select(OutboxMessage).where(OutboxMessage.subject.in_(subjects))):
            if msg.payload.get("body"):
                msg.payload = {**msg.payload, "body": ""}
                n += 1
    return n


def _decision_scrub(d: Decision) -> int:
    """Drop the free text (the message, the lint's quoted spans) from a stored decision."""
    event: dict[str, Any] = dict(d.event or {})
    result: dict[str, Any] = dict(d.result or {})
    changed = event.pop("message", None) is not None
    if result.get("lint"):
        result["lint"] = [{k: v for k, v in (x or {}).items() if k != "text"} for x in result["lint"]]
        changed = True
    if "facts" in result and isinstance(result["facts"], dict) and "message" in result["facts"]:
        result["facts"] = {k: v for k, v in result["facts"].items() if k != "message"}
        changed = True
    if changed:
        d.event, d.result = event, result  # new objects: JSON columns do not track in-place edits
    return int(changed)


class _DryRun(Exception):
    pass


def retention_run(
    c: Container, *, as_of: dt.date, now: dt.datetime, dry_run: bool = False, actor: str = "job:retention"
) -> dict[str, Any]:
    """Anonymise every expired borrower; with ``dry_run`` report the same counts and change nothing."""
    summary: dict[str, Any] = {}
    try:
        with c.uow() as s:
            candidates = retention_candidates(s, as_of=as_of)
            expired = [x for x in candidates if x["expired"]]
            totals: dict[str, int] = {}
            # One scan of the payloads for all expired borrowers, not one per borrower.
            index = payload_borrower_index(s, {x["borrower_id"] for x in expired}) if len(expired) > 1 else None
            for x in expired:
                for k, v in borrower_anonymise(s, c.cipher, x["borrower_id"], payload_index=index).items():
                    totals[k] = totals.get(k, 0) + v
            summary = {
                "as_of": as_of.isoformat(),
                "dry_run": dry_run,
                "policy": retention_policy()["version"],
                "borrowers_checked": len(candidates),
                "borrowers_expired": len(expired),
                "claims_open": sum(1 for x in candidates if x["claim_open"]),
                "anonymised": totals,
                "borrower_ids": [x["borrower_id"] for x in expired],
            }
            if dry_run:
                raise _DryRun
            audit_append(
                s,
                tenant_id=None,
                actor=actor,
                action="retention.run",
                subject="retention",
                payload={k: v for k, v in summary.items() if k != "dry_run"},
                now=now,
            )
    except _DryRun:
        pass
    return summary


def audit_redacted_count(session: Session) -> int:
    """How many audit payloads carry a redaction marker (a cheap length pre-filter, then exact)."""
    q = select(AuditRecord.payload).where(func.length(AuditRecord.payload) == REDACTED_LEN)
    return sum(1 for (p,) in session.execute(q) if redaction_digest(p) is not None)
