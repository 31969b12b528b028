"""The borrower portal's read models and actions (DESIGN §8 ``/portal``): the borrower's own loans,
consents, the data copy, complaints and payment-plan requests (the contact history is
``services.portal_history``; signing in ``services.portal_signin``).

Every function takes the signed-in ``Principal`` and serves only a ``borrower`` principal linked to a
borrower (``_own``), and only that borrower's rows in that lender's tenant (``services.authz``
scoping; a foreign id answers ``NotFound``, never ``Forbidden``). Personal data is masked here
(138****1234, 张**): the one clear copy a borrower gets is the data copy (PIPL 45), which
``services.rights`` writes and audits as a rights request.

Actions are the existing services behind their own permission checks: withdrawing a consent
(``services.consents``, effective at the very next guard decision), filing a complaint
(``services.complaints``: channel ``portal``, routed to compliance, never stopping collection by
itself), asking for a payment plan (``services.approvals``: a maker-checker ``plan`` request for the
outstanding balance in equal monthly installments) and the data copy (``services.rights``).
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import ROUND_DOWN, Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from collectguard.adapters.crypto import PiiCipher, mask_name, mask_phone
from collectguard.adapters.db.models import (
    Borrower,
    Case,
    Complaint,
    Consent,
    Contact,
    ContactAttempt,
    Decision,
    Installment,
    Loan,
    Payment,
    Tenant,
)
from collectguard.bootstrap import Container
from collectguard.errors import BadInput, Conflict, Forbidden
from collectguard.services.approvals import approval_request_as, approvals_list_as, loan_balance
from collectguard.services.authz import Principal, ensure_visible, require, scope_cases, scope_tenant
from collectguard.services.complaints import CATEGORIES, complaint_file_as, complaints_list_as
from collectguard.services.consents import consent_view, consent_withdraw_as, consents_of
from collectguard.services.daily import daily_default_as_of
from collectguard.services.rights import rights_request_access

__all__ = [
    "CATEGORIES",
    "NOT_WITHDRAWABLE",
    "PLAN_MAX_INSTALLMENTS",
    "borrower_me",
    "data_copy_json",
    "plain",
    "plan_schedule",
    "portal_complaint_file",
    "portal_complaints",
    "portal_consent_withdraw",
    "portal_consents",
    "portal_data_copy",
    "portal_data_summary",
    "portal_loan",
    "portal_overview",
    "portal_plan_request",
    "portal_plans",
    "utc",
]

PLAN_MAX_INSTALLMENTS = 24
# A notice records that the borrower was told something (outsourcing, PIPL 21): there is nothing to withdraw.
NOT_WITHDRAWABLE = frozenset({"outsourcing_notice"})
CENT = Decimal("0.01")


def _own(principal: Principal) -> int:
    """The borrower id of a borrower principal; anyone else is refused (the portal is the borrower's)."""
    if principal.role != "borrower" or principal.borrower_id is None:
        raise Forbidden("the portal is for borrowers", detail={"permission": "borrower"})
    return principal.borrower_id


def plain(cipher: PiiCipher, blob: bytes | None) -> str:
    if not blob:
        return ""
    try:
        return cipher.decrypt(blob)
    except ValueError:  # anonymised by retention, or under a retired key
        return ""


def utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t


def borrower_me(s: Session, c: Container, p: Principal) -> dict[str, Any]:
    b = ensure_visible(s.get(Borrower, _own(p)), p, session=s)
    tenant = s.get(Tenant, b.tenant_id)
    return {"id": b.id, "ext_id": b.ext_id, "name": mask_name(plain(c.cipher, b.name_enc)),
            "phone": mask_phone(plain(c.cipher, b.phone_enc)), "jurisdiction": b.jurisdiction,
            "timezone": b.timezone, "lender": tenant.name if tenant else p.tenant_code}


# ---------------------------------------------------------------- loans

def portal_overview(c: Container, *, principal: Principal) -> dict[str, Any]:
    """Who is signed in (masked), each loan with what is owed now, DPD and bucket, and open items."""
    require(principal, "loan.read")
    today = daily_default_as_of(c)
    with c.uow(write=False) as s:
        me = borrower_me(s, c, principal)
        loans = list(s.scalars(scope_tenant(select(Loan), Loan, principal).order_by(Loan.disbursed_on, Loan.id)))
        cases = {cs.loan_id: cs for cs in s.scalars(scope_cases(select(Case), principal).order_by(Case.id))}
        items = []
        for ln in loans:
            bal = loan_balance(s, loan_id=ln.id, on=today)
            cs = cases.get(ln.id)
            items.append({"id": ln.id, "ext_id": ln.ext_id, "product": ln.product, "principal": ln.principal,
                          "currency": ln.currency, "disbursed_on": ln.disbursed_on, "annual_rate": ln.annual_rate,
                          "apr": ln.apr, "outstanding": bal["outstanding"], "overdue": bal["overdue"],
                          "dpd": ln.dpd, "bucket": ln.bucket, "as_of": ln.as_of, "debt_status": ln.debt_status,
                          "case": None if cs is None else {"id": cs.id, "status": cs.status,
                                                           "paused": cs.paused_reason}})
        open_complaints = int(s.scalar(scope_tenant(select(func.count()).select_from(Complaint), Complaint,
                                                    principal).where(Complaint.status == "open")) or 0)
    return {"me": me, "today": today, "loans": items, "open_complaints": open_complaints}


def _schedule(installments: list[Installment], paid: Decimal, today: dt.date) -> list[dict[str, Any]]:
    """Installments with what payments cover, applied oldest first (DESIGN §13)."""
    out, left = [], paid
    for i in installments:
        due = i.principal_due + i.interest_due + i.fee_due
        covered = min(max(left, Decimal(0)), due)
        left -= covered
        state = ("paid" if covered >= due else "overdue" if i.due_date < today
                 else "partial" if covered > 0 else "due")
        out.append({"seq": i.seq, "due_date": i.due_date, "principal": i.principal_due, "interest": i.interest_due,
                    "fee": i.fee_due, "total": due, "covered": covered, "unpaid": due - covered, "state": state})
    return out


def portal_loan(c: Container, *, principal: Principal, loan_id: int) -> dict[str, Any]:
    """One of the borrower's loans: terms, the schedule with what is paid, and the payments."""
    require(principal, "loan.read")
    _own(principal)
    today = daily_default_as_of(c)
    with c.uow(write=False) as s:
        ln = ensure_visible(s.get(Loan, loan_id), principal, session=s)
        inst = list(s.scalars(select(Installment).where(Installment.loan_id == ln.id)
                              .order_by(Installment.due_date, Installment.seq)))
        pays = list(s.scalars(select(Payment).where(Payment.loan_id == ln.id).order_by(Payment.paid_on, Payment.id)))
        paid = sum((p.amount for p in pays), Decimal(0))
        bal = loan_balance(s, loan_id=ln.id, on=today)
        return {"loan": {"id": ln.id, "ext_id": ln.ext_id, "product": ln.product, "principal": ln.principal,
                         "currency": ln.currency, "disbursed_on": ln.disbursed_on, "annual_rate": ln.annual_rate,
                         "apr": ln.apr, "upfront_fees": ln.upfront_fees, "dpd": ln.dpd, "bucket": ln.bucket,
                         "as_of": ln.as_of, "debt_status": ln.debt_status, "outstanding": bal["outstanding"],
                         "overdue": bal["overdue"], "paid": paid},
                "schedule": _schedule(inst, paid, today),
                "payments": [{"paid_on": p.paid_on, "amount": p.amount} for p in pays]}


# ---------------------------------------------------------------- consents

def portal_consents(c: Container, *, principal: Principal) -> dict[str, Any]:
    """The borrower's consent history, those in force first, each saying whether it can be withdrawn."""
    require(principal, "consent.read")
    with c.uow(write=False) as s:
        me = borrower_me(s, c, principal)
        rows = consents_of(s, borrower_id=me["id"])
        items = [{**consent_view(r), "withdrawable": r.withdrawn_at is None and r.kind not in NOT_WITHDRAWABLE}
                 for r in rows]
    items.sort(key=lambda x: (not x["active"], x["given_at"] or ""), reverse=False)
    return {"me": me, "items": items}


def portal_consent_withdraw(c: Container, *, principal: Principal, consent_id: int) -> dict[str, Any]:
    """Withdraw one of the borrower's consents now (the next guard decision already sees it)."""
    _own(principal)
    with c.uow(write=False) as s:
        row = ensure_visible(s.get(Consent, consent_id), principal, session=s)
        kind = row.kind
    if kind in NOT_WITHDRAWABLE:
        raise Conflict("a notice records that you were told something; there is no consent to withdraw")
    return consent_withdraw_as(c, principal=principal, consent_id=consent_id)


# ---------------------------------------------------------------- data copy (PIPL 45)

def portal_data_copy(c: Container, *, principal: Principal) -> dict[str, Any]:
    """A copy of everything held about the borrower, in clear, recorded as an access request and audited."""
    require(principal, "rights.request")
    return rights_request_access(c, borrower_id=_own(principal), now=c.clock(), actor=principal.actor)


def portal_data_summary(c: Container, *, principal: Principal) -> dict[str, Any]:
    """How many records of each kind the data copy will hold (nothing is decrypted here)."""
    require(principal, "rights.request")
    bid = _own(principal)
    counts: dict[str, int] = {}
    with c.uow(write=False) as s:
        me = borrower_me(s, c, principal)
        for name, model in (("loans", Loan), ("contacts", Contact), ("consents", Consent),
                            ("contact_attempts", ContactAttempt), ("decisions", Decision),
                            ("complaints", Complaint)):
            stmt = select(func.count()).select_from(model).where(model.borrower_id == bid)
            counts[name] = int(s.scalar(scope_tenant(stmt, model, principal)) or 0)
    return {"me": me, "counts": counts}


def data_copy_json(copy: dict[str, Any]) -> bytes:
    """The data copy as a UTF-8 JSON document (Chinese kept readable)."""
    return json.dumps(copy, ensure_ascii=False, indent=2, default=str).encode("utf-8")


# ---------------------------------------------------------------- complaints and plan requests

def _cases(s: Session, p: Principal, *, open_only: bool) -> list[dict[str, Any]]:
    joined = select(Case, Loan).join(Loan, Loan.id == Case.loan_id)
    stmt = scope_cases(joined, p)  # type: ignore[type-var]  # a two-entity Select
    if open_only:
        stmt = stmt.where(Case.status == "open")
    return [{"id": cs.id, "status": cs.status, "loan_id": ln.id, "loan_ext_id": ln.ext_id, "product": ln.product,
             "dpd": cs.dpd, "bucket": cs.bucket, "currency": ln.currency}
            for cs, ln in s.execute(stmt.order_by(Case.id.desc()))]


def portal_complaints(c: Container, *, principal: Principal) -> dict[str, Any]:
    """The borrower's complaints (newest first) and the cases a new one can be about."""
    _own(principal)
    listed = complaints_list_as(c, principal=principal, limit=100)
    with c.uow(write=False) as s:
        cases = _cases(s, principal, open_only=False)
        tz = borrower_me(s, c, principal)["timezone"]
    return {"items": listed["items"], "cases": cases, "categories": CATEGORIES, "tz": tz}


def portal_complaint_file(c: Container, *, principal: Principal, case_id: int, category: str,
                          text: str) -> dict[str, Any]:
    """File a complaint from the portal: it goes to the lender's compliance officers (channel ``portal``)."""
    _own(principal)
    return complaint_file_as(c, principal=principal, case_id=case_id, on=daily_default_as_of(c),
                             category=category, text=text)


def _monthly(first: dt.date, n: int) -> list[dt.date]:
    out = []
    for k in range(n):
        y, m = divmod(first.month - 1 + k, 12)
        year, month = first.year + y, m + 1
        last = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).day
        out.append(dt.date(year, month, min(first.day, last)))
    return out


def plan_schedule(total: Decimal, *, first_due: dt.date, installments: int) -> list[dict[str, str]]:
    """``total`` in ``installments`` monthly payments from ``first_due``; the last one takes the cents left."""
    each = (total / installments).quantize(CENT, rounding=ROUND_DOWN)
    amounts = [each] * (installments - 1) + [total - each * (installments - 1)]
    return [{"due_date": d.isoformat(), "amount": str(a)} for d, a in zip(_monthly(first_due, installments),
                                                                          amounts, strict=True)]


def portal_plan_request(c: Container, *, principal: Principal, case_id: int, installments: int,
                        first_due: dt.date, reason: str) -> dict[str, Any]:
    """Ask to repay a case's outstanding balance in equal monthly installments (a maker-checker request:
    staff holding ``plan.approve`` decide it; nothing changes until then)."""
    _own(principal)
    require(principal, "plan.request")
    if not 2 <= installments <= PLAN_MAX_INSTALLMENTS:
        raise BadInput(f"2–{PLAN_MAX_INSTALLMENTS} installments", field="installments")
    today = daily_default_as_of(c)
    if not today < first_due <= today + dt.timedelta(days=60):
        raise BadInput("the first payment date must be within the next 60 days", field="first_due")
    with c.uow(write=False) as s:
        case = ensure_visible(s.get(Case, case_id), principal, session=s)
        owed = loan_balance(s, loan_id=case.loan_id, on=today)["outstanding"]
    if owed <= 0:
        raise Conflict("nothing is outstanding on this loan")
    if owed < installments * CENT:
        raise BadInput("too many installments for the balance", field="installments")
    return approval_request_as(c, principal=principal, case_id=case_id, on=today, kind="plan", reason=reason,
                               schedule=plan_schedule(owed, first_due=first_due, installments=installments))


def portal_plans(c: Container, *, principal: Principal) -> dict[str, Any]:
    """The borrower's payment-plan requests (newest first) and the open cases a new one can be for."""
    _own(principal)
    items = [r for r in approvals_list_as(c, principal=principal, limit=100) if r["kind"] == "plan"]
    with c.uow(write=False) as s:
        cases = _cases(s, principal, open_only=True)
        for cs in cases:
            cs["outstanding"] = loan_balance(s, loan_id=cs["loan_id"], on=daily_default_as_of(c))["outstanding"]
        tz = borrower_me(s, c, principal)["timezone"]
    return {"items": items, "cases": cases, "max_installments": PLAN_MAX_INSTALLMENTS, "tz": tz}
