"""Seed data for the contact-attempt, consent and concurrency tests (no tests of its own).

One lender with one borrower (Beijing time unless told otherwise), an overdue loan and its open
case, three contacts (a borrower-designated emergency contact, a guarantor, a contact-list entry),
an agency holding nothing yet, and a second lender with a borrower of its own (for isolation).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

from collectguard.adapters.db.models import Borrower, Case, Contact, Loan, Tenant
from collectguard.bootstrap import Container
from collectguard.services.authz import Principal
from conftest import FIXED_NOW

NOW = FIXED_NOW  # 10:00 in Beijing on 2026-04-07
DAY = dt.timedelta(days=1)


def at(c: Container, when: dt.datetime) -> Container:
    """The same container with its clock moved (its savepoint connection is kept)."""
    return dataclasses.replace(c, clock=lambda: when)


def _borrower(s: Any, c: Container, tenant: Tenant, ext: str, phone: str, **kw: Any) -> Borrower:
    b = Borrower(tenant_id=tenant.id, ext_id=ext, name_enc=c.cipher.encrypt("张三"), phone_enc=c.cipher.encrypt(phone),
                 phone_hmac=c.cipher.lookup_hash(phone), jurisdiction=kw.get("jurisdiction", "CN"),
                 timezone=kw.get("timezone", "Asia/Shanghai"), language="zh-CN", status=kw.get("status", "active"),
                 created_at=NOW)
    s.add(b)
    s.flush()
    return b


def _contact(s: Any, c: Container, b: Borrower, ext: str, phone: str, relation: str, source: str) -> Contact:
    ct = Contact(tenant_id=b.tenant_id, borrower_id=b.id, ext_id=ext, name_enc=c.cipher.encrypt("李四"),
                 phone_enc=c.cipher.encrypt(phone), phone_hmac=c.cipher.lookup_hash(phone), relation=relation,
                 source=source, designated_by_borrower=source == "borrower_designated", created_at=NOW)
    s.add(ct)
    s.flush()
    return ct


def _loan_case(s: Any, b: Borrower, ext: str, *, dpd: int, lender_type: str, rate: str) -> tuple[Loan, Case]:
    loan = Loan(tenant_id=b.tenant_id, ext_id=ext, borrower_id=b.id, lender_type=lender_type,
                principal=Decimal("10000"), currency="CNY", annual_rate=Decimal(rate),
                disbursed_on=dt.date(2025, 10, 1), lpr_at_signing=Decimal("3.45"), dpd=dpd, bucket="M1",
                debt_status="valid", created_at=NOW)
    s.add(loan)
    s.flush()
    case = Case(tenant_id=b.tenant_id, loan_id=loan.id, borrower_id=b.id, status="open", bucket="M1", dpd=dpd,
                opened_on=dt.date(2026, 3, 20))
    s.add(case)
    s.flush()
    return loan, case


def seed(c: Container, *, jurisdiction: str = "CN", timezone: str = "Asia/Shanghai", status: str = "active",
         dpd: int = 18, lender_type: str = "licensed_institution", rate: str = "18") -> dict[str, Any]:
    """Create the world above; returns its ids and principals by name."""
    with c.uow() as s:
        lender = Tenant(code="lender-a", name="甲贷", kind="lender", created_at=NOW)
        other = Tenant(code="lender-b", name="乙贷", kind="lender", created_at=NOW)
        agency = Tenant(code="agency-x", name="某催收", kind="agency", created_at=NOW)
        s.add_all([lender, other, agency])
        s.flush()
        b = _borrower(s, c, lender, "B1", "+8613800138000", jurisdiction=jurisdiction, timezone=timezone,
                      status=status)
        loan, case = _loan_case(s, b, "L1", dpd=dpd, lender_type=lender_type, rate=rate)
        ec = _contact(s, c, b, "C1", "+8613900139000", "emergency_contact", "borrower_designated")
        gu = _contact(s, c, b, "C2", "+8613700137000", "guarantor", "borrower_designated")
        cl = _contact(s, c, b, "C3", "+8613600136000", "contact_list_entry", "contact_list")
        b2 = _borrower(s, c, other, "B9", "+8613500135000")
        loan2, case2 = _loan_case(s, b2, "L9", dpd=dpd, lender_type=lender_type, rate=rate)
        ct2 = _contact(s, c, b2, "C9", "+8613400134000", "emergency_contact", "borrower_designated")
        ids = {"lender": lender.id, "other": other.id, "agency": agency.id, "borrower": b.id, "loan": loan.id,
               "case": case.id, "emergency": ec.id, "guarantor": gu.id, "listed": cl.id, "borrower2": b2.id,
               "loan2": loan2.id, "case2": case2.id, "contact2": ct2.id}
    ids["collector"] = Principal(tenant_id=ids["lender"], tenant_code="lender-a", role="collector", user_id=None,
                                 token_id=1)
    ids["officer"] = Principal(tenant_id=ids["lender"], tenant_code="lender-a", role="compliance_officer",
                               token_id=2)
    ids["agent"] = Principal(tenant_id=ids["agency"], tenant_code="agency-x", role="agency_collector",
                             agency_tenant_id=ids["agency"], token_id=3)
    ids["outsider"] = Principal(tenant_id=ids["other"], tenant_code="lender-b", role="collector", token_id=4)
    return ids
