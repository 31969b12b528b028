"""Seed data for the audit, evidence, retention and rights tests: one borrower with everything."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text

from collectguard.adapters.db.models import (
    Borrower,
    Case,
    Complaint,
    Consent,
    Contact,
    ContactAttempt,
    Decision,
    Loan,
    PromiseToPay,
    Tenant,
)
from collectguard.services.audit import audit_append

NAME, PHONE = "张三丰", "+8613800001234"
CONTACT_NAME, CONTACT_PHONE = "李四", "+8613900005678"


def seed_borrower(
    c,
    *,
    ext_id: str = "B1",
    tenant_code: str = "demo-lender",
    closed: bool = False,
    jurisdiction: str = "CN",
    when: dt.datetime | None = None,
) -> dict[str, Any]:
    """A borrower with a loan, a case, two contacts, consents, an attempt, a decision, a complaint, a PTP.

    ``closed``: the loan is repaid and the case closed on ``when``'s date. Every row gets its audit record.
    """
    now = when or dt.datetime(2026, 4, 7, 2, 0, tzinfo=dt.UTC)
    cip = c.cipher
    with c.uow() as s:
        tenant = s.scalar(select(Tenant).where(Tenant.code == tenant_code))
        if tenant is None:
            tenant = Tenant(code=tenant_code, name=tenant_code, kind="lender", created_at=now)
            s.add(tenant)
            s.flush()
        t = tenant.id
        b = Borrower(
            tenant_id=t,
            ext_id=ext_id,
            name_enc=cip.encrypt(NAME),
            phone_enc=cip.encrypt(PHONE),
            phone_hmac=cip.lookup_hash(PHONE),
            id_number_enc=cip.encrypt("110101199001011234"),
            id_number_hmac=cip.lookup_hash("110101199001011234"),
            jurisdiction=jurisdiction,
            timezone="Asia/Shanghai",
            language="zh-CN",
            created_at=now,
        )
        s.add(b)
        s.flush()
        loan = Loan(
            tenant_id=t,
            ext_id=f"L-{ext_id}",
            borrower_id=b.id,
            lender_type="licensed_institution",
            principal=Decimal("5000.00"),
            currency="CNY",
            annual_rate=Decimal("18"),
            disbursed_on=dt.date(2025, 1, 1),
            dpd=0 if closed else 40,
            bucket="closed" if closed else "M2",
            outstanding=Decimal("0") if closed else Decimal("1200.00"),
            created_at=now,
        )
        s.add(loan)
        s.flush()
        case = Case(
            tenant_id=t,
            loan_id=loan.id,
            borrower_id=b.id,
            status="closed" if closed else "open",
            bucket="M2",
            dpd=40,
            opened_on=dt.date(2026, 3, 1),
            closed_on=now.date() if closed else None,
        )
        ec = Contact(
            tenant_id=t,
            borrower_id=b.id,
            ext_id=f"C1-{ext_id}",
            name_enc=cip.encrypt(CONTACT_NAME),
            phone_enc=cip.encrypt(CONTACT_PHONE),
            phone_hmac=cip.lookup_hash(CONTACT_PHONE),
            relation="emergency_contact",
            source="borrower_designated",
            designated_by_borrower=True,
            created_at=now,
        )
        cl = Contact(
            tenant_id=t,
            borrower_id=b.id,
            ext_id=f"C2-{ext_id}",
            name_enc=cip.encrypt("王五"),
            phone_enc=cip.encrypt("+8613700009999"),
            phone_hmac=cip.lookup_hash("+8613700009999"),
            relation="contact_list_entry",
            source="contact_list",
            created_at=now,
        )
        consent = Consent(tenant_id=t, borrower_id=b.id, kind="contact_list", form="separate", given_at=now)
        s.add_all([case, ec, cl, consent])
        s.flush()
        msg = f"{NAME}您好，请于本周内还款，回电 13800001234。"
        d = Decision(
            tenant_id=t,
            borrower_id=b.id,
            created_at=now,
            verdict="allow",
            pack="CN",
            pack_version="2026.1",
            rules="",
            event={"channel": "sms", "message": msg},
            result={"verdict": "allow", "violations": [], "lint": [{"category": "x", "text": "还款"}]},
        )
        s.add(d)
        s.flush()
        att = ContactAttempt(
            tenant_id=t,
            case_id=case.id,
            loan_id=loan.id,
            borrower_id=b.id,
            channel="sms",
            recipient_role="borrower",
            recipient_key=b.phone_hmac,
            actor="user:alice",
            planned_at=now,
            local_date=now.date(),
            message=msg,
            outcome="connected",
            decision_id=d.id,
        )
        comp = Complaint(tenant_id=t, borrower_id=b.id, case_id=case.id, text=f"{CONTACT_NAME}被骚扰", created_at=now)
        ptp = PromiseToPay(
            tenant_id=t,
            case_id=case.id,
            promised_on=now.date(),
            due_date=now.date(),
            amount=Decimal("100.00"),
            created_at=now,
        )
        s.add_all([att, comp, ptp])
        s.flush()
        for action, subject, payload in [
            ("borrower.import", f"borrower:{b.id}", {"ext_id": ext_id, "name": NAME}),
            ("decision.create", f"decision:{d.id}", {"verdict": "allow", "message": msg}),
            ("contact_attempt.create", f"contact_attempt:{att.id}", {"channel": "sms", "message": msg}),
            ("complaint.create", f"complaint:{comp.id}", {"text": comp.text}),
            ("guard.check", "guard", {"borrower_id": b.id, "verdict": "allow"}),
        ]:
            audit_append(s, tenant_id=t, actor="user:alice", action=action, subject=subject, payload=payload, now=now)
        return {
            "tenant_id": t,
            "borrower_id": b.id,
            "loan_id": loan.id,
            "case_id": case.id,
            "attempt_id": att.id,
            "decision_id": d.id,
            "contact_ids": [ec.id, cl.id],
        }


def noise(c, *, tenant_code: str = "demo-lender", n: int = 5, when: dt.datetime | None = None) -> None:
    """Audit records about nobody in particular, to sit between a borrower's records in the chain."""
    now = when or dt.datetime(2026, 4, 7, 2, 0, tzinfo=dt.UTC)
    with c.uow() as s:
        t = s.scalar(select(Tenant.id).where(Tenant.code == tenant_code))
        for i in range(n):
            audit_append(
                s,
                tenant_id=t,
                actor="user:bob",
                action="other",
                subject=f"other:{i}",
                payload={"i": i, "secret": "someone else's data"},
                now=now,
            )


def execute(c, sql: str, **params: Any) -> None:
    """Tamper with the database directly, as an attacker with SQL access would."""
    with c.uow() as s:
        s.execute(text(sql), params)
