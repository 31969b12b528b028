"""Repayment links and codes (还款链接 / 还款码) per case, and payments reported by the lender's system.

A link is ``/pay/<token>`` with ``token = <link id>.<expiry, Unix seconds>.<HMAC-SHA256>``, signed
with ``Settings.secret_key`` for the purpose ``paylink``: a forged or altered token, an unknown,
revoked or expired link all fail before anything is read. The public page shows only the masked
name, the amount due and a note that payment happens in the lender's own system — collectguard
never takes money. The short code (8 characters, no look-alikes such as 0/O, 1/I) is for the phone
and SMS: the borrower quotes it in the lender's app, and the lender's payment system may report
the payment against it.

Payments come from the lender's payment system (``payment_record``, ``POST /api/v1/payments``)
with an idempotency key: the same key with the same request answers with the payment already
recorded (no second row); the same key with a different request is a conflict. Each payment is a
``payment`` row (the daily run applies it, DESIGN §13) and an audit record, in one transaction.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from collectguard.adapters.crypto import mask_name
from collectguard.adapters.db.models import Borrower, Case, Loan, Payment, Tenant
from collectguard.adapters.db.models_ops import PayLink, PaymentReceipt
from collectguard.bootstrap import Container
from collectguard.domain.money import parse_amount
from collectguard.errors import BadInput, Conflict, NotFound
from collectguard.services.approvals import loan_balance
from collectguard.services.audit import audit_append, canonical_json
from collectguard.services.authz import Principal, ensure_visible, require

__all__ = ["CODE_ALPHABET", "PaylinkExpired", "paylink_create", "paylink_create_as", "paylink_page",
           "paylink_resolve", "paylink_token", "payment_record", "payment_record_as"]

CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 8
MAX_TTL_HOURS = 24 * 30
# Who may hand out a link (those who may record a promise to pay) and who may report payments: the
# lender's payment system, with a token of role ``integration`` (or an admin): services.authz.
PERM_LINK = "ptp.create"
PERM_PAYMENT = "payment.record"
NOTE = {"zh": "请在贷款机构的官方 App 或网站内完成还款（可输入还款码）。本页面不收款，也不会要求您向个人账户转账。",
        "en": "Pay in the lender's own app or website (you may enter the repayment code). This page takes no "
              "payment and will never ask you to transfer money to a personal account."}


class PaylinkExpired(Conflict):
    """The link was genuine but has expired (the page says so instead of 'not found')."""


def _mac(secret: str, value: str) -> str:
    digest = hmac.new(secret.encode(), f"paylink|{value}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def paylink_token(secret: str, link: PayLink) -> str:
    """The signed token of ``link`` (what goes after ``/pay/``)."""
    exp = int(_utc(link.expires_at).timestamp())
    return f"{link.id}.{exp}.{_mac(secret, f'{link.id}.{exp}')}"


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t  # SQLite hands back naive UTC


def paylink_create(s: Session, *, secret: str, tenant_id: int, case_id: int, ttl_hours: int = 72, actor: str,
                   now: dt.datetime) -> tuple[PayLink, str]:
    """A new link and code for an open case, valid ``ttl_hours``; returns the row and its token."""
    if not 1 <= ttl_hours <= MAX_TTL_HOURS:
        raise BadInput(f"1–{MAX_TTL_HOURS} hours", field="ttl_hours")
    case = s.get(Case, case_id)
    if case is None or case.tenant_id != tenant_id:
        raise NotFound("no such case")
    if case.status != "open":
        raise Conflict("the case is closed")
    while True:  # 32^8 codes: a clash is rare, and the UNIQUE index would catch a race
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if s.scalar(select(PayLink.id).where(PayLink.code == code)) is None:
            break
    link = PayLink(tenant_id=tenant_id, case_id=case.id, loan_id=case.loan_id, code=code, created_by=actor[:120],
                   created_at=now, expires_at=now + dt.timedelta(hours=ttl_hours))
    s.add(link)
    s.flush()
    audit_append(s, tenant_id=tenant_id, actor=actor, action="paylink.create", subject=f"case:{case.id}", now=now,
                 payload={"borrower_id": case.borrower_id, "case_id": case.id, "link_id": link.id,
                          "expires_at": link.expires_at.isoformat()})
    return link, paylink_token(secret, link)


def paylink_resolve(s: Session, *, secret: str, token: str, now: dt.datetime) -> PayLink:
    """The link of a genuine token; ``NotFound`` when forged, unknown or revoked, ``PaylinkExpired``."""
    parts = token.split(".")
    if len(parts) != 3 or len(token) > 200 or not parts[0].isdigit() or not parts[1].isdigit():
        raise NotFound("no such link")
    if not hmac.compare_digest(parts[2], _mac(secret, f"{parts[0]}.{parts[1]}")):
        raise NotFound("no such link")
    link = s.get(PayLink, int(parts[0]))
    if link is None or link.revoked_at is not None or int(_utc(link.expires_at).timestamp()) != int(parts[1]):
        raise NotFound("no such link")
    if _utc(link.expires_at) <= now:
        raise PaylinkExpired("this repayment link has expired; ask for a new one")
    return link


def paylink_page(c: Container, *, token: str, on: dt.date) -> dict[str, Any]:
    """What the public page shows: masked name, amount due, the code and the note (no login)."""
    with c.uow(write=False) as s:
        link = paylink_resolve(s, secret=c.settings.secret_key, token=token, now=c.clock())
        loan, lender = s.get(Loan, link.loan_id), s.get(Tenant, link.tenant_id)
        assert loan is not None and lender is not None
        borrower = s.get(Borrower, loan.borrower_id)
        assert borrower is not None
        try:
            name = mask_name(c.cipher.decrypt(borrower.name_enc))
        except ValueError:  # anonymised by retention
            name = "*"
        balance = loan_balance(s, loan_id=loan.id, on=on)
        return {"name_masked": name, "lender": lender.name, "currency": loan.currency,
                "amount_due": str(balance["overdue"]), "outstanding": str(balance["outstanding"]),
                "code": link.code, "expires_at": _utc(link.expires_at).isoformat(), "note": NOTE}


def _loan_for(s: Session, tenant_id: int, loan_id: int | None, loan_ref: str | None, pay_code: str | None) -> Loan:
    if sum(x is not None for x in (loan_id, loan_ref, pay_code)) != 1:
        raise BadInput("give exactly one of loan_id, loan_ref and pay_code", field="loan_id")
    if pay_code is not None:
        link = s.scalar(select(PayLink).where(PayLink.code == pay_code.strip().upper()))
        loan_id = link.loan_id if link is not None and link.tenant_id == tenant_id else -1
    stmt = select(Loan).where(Loan.tenant_id == tenant_id)
    loan = s.scalar(stmt.where(Loan.id == loan_id) if loan_ref is None else stmt.where(Loan.ext_id == loan_ref))
    if loan is None:
        raise NotFound("no such loan")
    return loan


def payment_record(s: Session, *, tenant_id: int, idempotency_key: str, amount: Any, paid_on: dt.date,
                   loan_id: int | None = None, loan_ref: str | None = None, pay_code: str | None = None,
                   ext_ref: str | None = None, actor: str, now: dt.datetime) -> tuple[dict[str, Any], bool]:
    """Record a payment once per idempotency key; returns (the payment, whether it was created now)."""
    key = idempotency_key.strip()
    if not 8 <= len(key) <= 128 or not key.isprintable():
        raise BadInput("an idempotency key is 8–128 printable characters", field="idempotency_key")
    loan = _loan_for(s, tenant_id, loan_id, loan_ref, pay_code)
    value = parse_amount(amount, field="amount", currency=loan.currency, positive=True)
    if paid_on > (now + dt.timedelta(days=1)).date() or paid_on < loan.disbursed_on:
        raise BadInput("a payment is dated between the disbursement and today", field="paid_on")
    if ext_ref is not None and len(ext_ref) > 64:
        raise BadInput("at most 64 characters", field="ext_ref")
    request = canonical_json({"loan_id": loan.id, "amount": str(value), "paid_on": paid_on.isoformat(),
                              "ext_ref": ext_ref})
    sha = hashlib.sha256(request.encode()).hexdigest()
    found = _replay(s, tenant_id, key, sha)
    if found is not None:
        return found, False
    try:
        with s.begin_nested():  # a concurrent request with the same key loses here, not the transaction
            pay = Payment(loan_id=loan.id, paid_on=paid_on, amount=value, ext_ref=ext_ref, created_at=now)
            s.add(pay)
            s.flush()
            s.add(PaymentReceipt(tenant_id=tenant_id, idempotency_key=key, request_sha256=sha, payment_id=pay.id,
                                 recorded_by=actor[:120], created_at=now))
            s.flush()
    except IntegrityError:
        found = _replay(s, tenant_id, key, sha)
        if found is None:
            raise
        return found, False
    audit_append(s, tenant_id=tenant_id, actor=actor, action="payment.record", subject=f"loan:{loan.id}", now=now,
                 payload={"borrower_id": loan.borrower_id, "loan_id": loan.id, "payment_id": pay.id,
                          "amount": str(value), "paid_on": paid_on.isoformat(), "ext_ref": ext_ref,
                          "idempotency_key": key})
    return _view(pay), True


def _replay(s: Session, tenant_id: int, key: str, sha: str) -> dict[str, Any] | None:
    receipt = s.scalar(select(PaymentReceipt).where(PaymentReceipt.tenant_id == tenant_id,
                                                    PaymentReceipt.idempotency_key == key))
    if receipt is None:
        return None
    if receipt.request_sha256 != sha:
        raise Conflict("this idempotency key was used for a different payment", detail={"field": "idempotency_key"})
    pay = s.get(Payment, receipt.payment_id)
    assert pay is not None
    return _view(pay)


def _view(pay: Payment) -> dict[str, Any]:
    return {"payment_id": pay.id, "loan_id": pay.loan_id, "amount": str(pay.amount),
            "paid_on": pay.paid_on.isoformat(), "ext_ref": pay.ext_ref}


# ---------------------------------------------------------------- for the API (principal-checked)

def paylink_create_as(c: Container, *, principal: Principal, case_id: int, ttl_hours: int = 72) -> dict[str, Any]:
    """A link for a case the caller sees (``ptp.create``: collectors, team leads, the borrower)."""
    require(principal, PERM_LINK)
    with c.uow() as s:
        case = ensure_visible(s.get(Case, case_id), principal, session=s)
        link, token = paylink_create(s, secret=c.settings.secret_key, tenant_id=case.tenant_id, case_id=case.id,
                                     ttl_hours=ttl_hours, actor=principal.actor, now=c.clock())
        return {"link_id": link.id, "code": link.code, "path": f"/pay/{token}", "token": token,
                "expires_at": _utc(link.expires_at).isoformat()}


def payment_record_as(c: Container, *, principal: Principal, **kw: Any) -> tuple[dict[str, Any], bool]:
    """``payment_record`` for the lender's payment system (``payment.record``: an integration token)."""
    require(principal, PERM_PAYMENT)
    with c.uow() as s:
        return payment_record(s, tenant_id=principal.tenant_id, actor=principal.actor, now=c.clock(), **kw)
