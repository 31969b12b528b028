"""Repayment links and codes (signed, expiring) and payments reported with an idempotency key (both backends)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from test_allocation import NOW, D, borrower, case, lender, principal

from collectguard.adapters.db.models import AuditRecord, Payment
from collectguard.adapters.db.models_ops import PaymentReceipt
from collectguard.errors import BadInput, Conflict, Forbidden, NotFound
from collectguard.services.paylinks import (
    CODE_ALPHABET,
    PaylinkExpired,
    paylink_create,
    paylink_create_as,
    paylink_page,
    paylink_resolve,
    payment_record,
    payment_record_as,
)


@pytest.fixture
def w(container):
    with container.uow() as s:
        t, other = lender(s), lender(s, "lender-z")
        row = case(s, borrower(s, container, t, "B1", name="王小明"), "L1", amount="3000.00")
        far = case(s, borrower(s, container, other, "B9"), "L9")
        return {"t": t.id, "case": row.id, "loan": row.loan_id, "far_loan": far.loan_id,
                "collector": principal(t, "collector", token_id=21), "admin": principal(t, "admin", token_id=22),
                "auditor": principal(t, "auditor", token_id=23), "outsider": principal(other, "admin", token_id=24)}


def link(c, w, **kw):
    with c.uow() as s:
        return paylink_create(s, secret=c.settings.secret_key, tenant_id=w["t"], case_id=w["case"], actor="u",
                              now=NOW, **kw)


def resolve(c, token, now=NOW):
    with c.uow(write=False) as s:
        return paylink_resolve(s, secret=c.settings.secret_key, token=token, now=now)


def pay(c, w, key="pay-0001-abc", **kw):
    kw.setdefault("amount", "500.00")
    kw.setdefault("paid_on", D)
    if not {"loan_id", "loan_ref", "pay_code"} & set(kw):
        kw["loan_id"] = w["loan"]
    with c.uow() as s:
        return payment_record(s, tenant_id=w["t"], idempotency_key=key, actor="token:22", now=NOW, **kw)


def test_a_link_is_signed_expires_and_carries_a_readable_code(container, w):
    row, token = link(container, w, ttl_hours=2)
    assert len(row.code) == 8 and set(row.code) <= set(CODE_ALPHABET)
    assert resolve(container, token).id == row.id
    lid, exp, mac = token.split(".")
    for forged in (f"{lid}.{int(exp) + 3600}.{mac}", f"{int(lid) + 1}.{exp}.{mac}", f"{lid}.{exp}.{mac[:-2]}AA",
                   "garbage", f"{lid}.{exp}"):
        with pytest.raises(NotFound):
            resolve(container, forged)
    with pytest.raises(PaylinkExpired):
        resolve(container, token, now=NOW + dt.timedelta(hours=2))
    other = dataclasses.replace(container, settings=container.settings.model_copy(update={"secret_key": "k" * 40}))
    with pytest.raises(NotFound):  # signed with another secret
        resolve(other, token)


def test_the_public_page_shows_only_the_masked_name_and_the_amounts(container, w):
    row, token = link(container, w)
    page = paylink_page(container, token=token, on=D)
    assert page["name_masked"] == "王**" and "王小明" not in str(page)
    assert (page["amount_due"], page["outstanding"], page["currency"]) == ("1500.00", "3000.00", "CNY")
    assert page["code"] == row.code and "不收款" in page["note"]["zh"]


def test_links_are_for_open_cases_of_the_tenant_and_audited(container, w):
    with pytest.raises(BadInput):
        link(container, w, ttl_hours=0)
    out = paylink_create_as(container, principal=w["collector"], case_id=w["case"])
    assert out["path"] == f"/pay/{out['token']}"
    with pytest.raises(NotFound):
        paylink_create_as(container, principal=dataclasses.replace(w["outsider"], role="collector"), case_id=w["case"])
    with pytest.raises(Forbidden):
        paylink_create_as(container, principal=w["auditor"], case_id=w["case"])
    with container.uow(write=False) as s:
        audited = select(func.count()).select_from(AuditRecord).where(AuditRecord.action == "paylink.create")
        assert s.scalar(audited) == 1


def test_a_payment_is_recorded_once_per_idempotency_key(container, w):
    first, created = pay(container, w)
    assert created and first["amount"] == "500.00"
    again, created = pay(container, w)
    assert not created and again == first
    with pytest.raises(Conflict):
        pay(container, w, amount="600.00")
    with container.uow(write=False) as s:
        assert s.scalar(select(func.count()).select_from(Payment)) == 1
        assert s.scalar(select(func.count()).select_from(PaymentReceipt)) == 1
        audit = s.scalars(select(AuditRecord).where(AuditRecord.action == "payment.record")).all()
        assert len(audit) == 1 and '"idempotency_key":"pay-0001-abc"' in audit[0].payload


def test_payments_find_their_loan_by_id_reference_or_repayment_code(container, w):
    row, _token = link(container, w)
    assert pay(container, w, key="k-by-code-1", pay_code=row.code.lower())[0]["loan_id"] == w["loan"]
    assert pay(container, w, key="k-by-ref-01", loan_ref="L1")[0]["loan_id"] == w["loan"]
    with pytest.raises(NotFound):
        pay(container, w, key="k-foreign-1", loan_id=w["far_loan"])
    with pytest.raises(NotFound):
        pay(container, w, key="k-nocode-01", pay_code="ZZZZ2222")
    with pytest.raises(BadInput):
        pay(container, w, key="k-both-0001", loan_id=w["loan"], loan_ref="L1")


@pytest.mark.parametrize("kw, field", [
    ({"key": "short"}, "idempotency_key"), ({"amount": "0"}, "amount"), ({"amount": "1.001"}, "amount"),
    ({"paid_on": D + dt.timedelta(days=5)}, "paid_on"), ({"paid_on": dt.date(2020, 1, 1)}, "paid_on"),
])
def test_bad_payments_name_the_field(container, w, kw, field):
    with pytest.raises(BadInput) as exc:
        pay(container, w, **kw)
    assert exc.value.field == field


def test_only_the_lenders_payment_system_reports_payments(container, w):
    with pytest.raises(Forbidden):
        payment_record_as(container, principal=w["collector"], idempotency_key="abcdefgh", loan_id=w["loan"],
                          amount=Decimal("1"), paid_on=D)
    out, created = payment_record_as(container, principal=w["admin"], idempotency_key="abcdefgh", loan_id=w["loan"],
                                     amount=Decimal("1"), paid_on=D)
    assert created and out["loan_id"] == w["loan"]
    with pytest.raises(NotFound):  # another lender's admin cannot pay into this loan
        payment_record_as(container, principal=w["outsider"], idempotency_key="abcdefgh", loan_id=w["loan"],
                          amount=Decimal("1"), paid_on=D)
