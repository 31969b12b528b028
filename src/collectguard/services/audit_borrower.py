"""What is held about one borrower: the rows of every table and the audit records about them.

Shared by the evidence bundle, retention and the rights requests, so that all three agree on what
"about this borrower" means. An audit record is about borrower B when its subject is
``<kind>:<id>`` of B or of one of B's rows (loan, case, contact, contact_attempt, decision,
complaint, consent, rights_request, ptp, payment_plan), or its payload has ``"borrower_id": B``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from collectguard.adapters.db.models import (
    AuditRecord,
    Borrower,
    Case,
    Complaint,
    Consent,
    Contact,
    ContactAttempt,
    Decision,
    Loan,
    PaymentPlan,
    PromiseToPay,
    RightsRequest,
    Tenant,
)
from collectguard.errors import NotFound

_CHUNK = 500


@dataclass
class BorrowerFile:
    """Every row held about one borrower, loaded in one transaction."""

    tenant: Tenant
    borrower: Borrower
    loans: list[Loan] = field(default_factory=list)
    cases: list[Case] = field(default_factory=list)
    contacts: list[Contact] = field(default_factory=list)
    consents: list[Consent] = field(default_factory=list)
    attempts: list[ContactAttempt] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    complaints: list[Complaint] = field(default_factory=list)
    ptps: list[PromiseToPay] = field(default_factory=list)
    plans: list[PaymentPlan] = field(default_factory=list)
    rights: list[RightsRequest] = field(default_factory=list)

    def subjects(self) -> set[str]:
        """Every audit subject that names this borrower or one of the borrower's rows."""
        out = {f"borrower:{self.borrower.id}"}
        for kind, rows in (
            ("loan", self.loans),
            ("case", self.cases),
            ("contact", self.contacts),
            ("contact_attempt", self.attempts),
            ("decision", self.decisions),
            ("complaint", self.complaints),
            ("consent", self.consents),
            ("ptp", self.ptps),
            ("payment_plan", self.plans),
            ("rights_request", self.rights),
        ):
            out.update(f"{kind}:{r.id}" for r in rows)
        return out


def borrower_find(session: Session, *, ext_id: str, tenant_code: str) -> tuple[Tenant, Borrower]:
    """The tenant and borrower by codes; ``NotFound`` (saying nothing more) otherwise."""
    row = session.execute(
        select(Tenant, Borrower)
        .join(Borrower, Borrower.tenant_id == Tenant.id)
        .where(Tenant.code == tenant_code, Borrower.ext_id == ext_id)
    ).first()
    if row is None:
        raise NotFound("no such borrower")
    return row[0], row[1]


def borrower_file(session: Session, borrower_id: int) -> BorrowerFile:
    """Load every row about the borrower with internal id ``borrower_id``."""
    b = session.get(Borrower, borrower_id)
    if b is None:
        raise NotFound("no such borrower")
    t = session.get(Tenant, b.tenant_id)
    assert t is not None
    f = BorrowerFile(tenant=t, borrower=b)
    f.loans = list(session.scalars(select(Loan).where(Loan.borrower_id == b.id).order_by(Loan.id)))
    f.cases = list(session.scalars(select(Case).where(Case.borrower_id == b.id).order_by(Case.id)))
    f.contacts = list(session.scalars(select(Contact).where(Contact.borrower_id == b.id).order_by(Contact.id)))
    f.consents = list(session.scalars(select(Consent).where(Consent.borrower_id == b.id).order_by(Consent.id)))
    f.attempts = list(
        session.scalars(
            select(ContactAttempt)
            .where(ContactAttempt.borrower_id == b.id)
            .order_by(ContactAttempt.planned_at, ContactAttempt.id)
        )
    )
    f.decisions = list(session.scalars(select(Decision).where(Decision.borrower_id == b.id).order_by(Decision.id)))
    f.complaints = list(session.scalars(select(Complaint).where(Complaint.borrower_id == b.id).order_by(Complaint.id)))
    case_ids = [c.id for c in f.cases]
    if case_ids:
        f.ptps = list(
            session.scalars(select(PromiseToPay).where(PromiseToPay.case_id.in_(case_ids)).order_by(PromiseToPay.id))
        )
        f.plans = list(
            session.scalars(select(PaymentPlan).where(PaymentPlan.case_id.in_(case_ids)).order_by(PaymentPlan.id))
        )
    f.rights = list(
        session.scalars(select(RightsRequest).where(RightsRequest.borrower_id == b.id).order_by(RightsRequest.id))
    )
    return f


def _chunks(items: Iterable[Any]) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for it in items:
        batch.append(it)
        if len(batch) == _CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def borrower_audit_records(
    session: Session, f: BorrowerFile, *, payload_index: dict[int, list[int]] | None = None
) -> list[AuditRecord]:
    """The audit records about the borrower, ordered by chain and seq.

    ``payload_index`` (from ``payload_borrower_index``) replaces the scan of payloads when many
    borrowers are processed in one go.
    """
    r = AuditRecord
    found: dict[int, AuditRecord] = {}
    for batch in _chunks(sorted(f.subjects())):
        for rec in session.scalars(select(r).where(r.subject.in_(batch))):
            found[rec.id] = rec
    bid = f.borrower.id
    if payload_index is not None:
        for ids in _chunks(payload_index.get(bid, [])):
            found.update((rec.id, rec) for rec in session.scalars(select(r).where(r.id.in_(ids))))
        return sorted(found.values(), key=lambda rec: (rec.chain, rec.seq))
    # Canonical JSON has no spaces, so the LIKE is a cheap pre-filter; json.loads decides.
    like = select(r).where(
        r.tenant_id == f.tenant.id,
        or_(r.payload.like(f'%"borrower_id":{bid},%'), r.payload.like(f'%"borrower_id":{bid}}}%')),
    )
    for rec in session.scalars(like):
        if rec.id not in found and _payload_borrower(rec.payload) == bid:
            found[rec.id] = rec
    return sorted(found.values(), key=lambda rec: (rec.chain, rec.seq))


def payload_borrower_index(session: Session, borrower_ids: set[int]) -> dict[int, list[int]]:
    """One pass over the payloads: borrower id -> ids of the audit records whose payload names it."""
    r = AuditRecord
    out: dict[int, list[int]] = {}
    q = select(r.id, r.payload).where(r.payload.like('%"borrower_id":%'))
    for rid, payload in session.execute(q.execution_options(yield_per=10_000)):
        bid = _payload_borrower(payload)
        if bid in borrower_ids:
            out.setdefault(bid, []).append(rid)
    return out


def _payload_borrower(payload: str) -> Any:
    try:
        obj: Any = json.loads(payload)
    except ValueError:
        return None
    return obj.get("borrower_id") if isinstance(obj, dict) else None
