"""Revealing a masked number needs a reason, recorded with the PII-read audit record; new numbers come
only from the borrower (lawful data sources); no result code asks a third party to pay (both backends)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from sqlalchemy import func, select
from test_attempts_seed import seed

from collectguard.adapters.db.models import AuditRecord, Contact
from collectguard.errors import BadInput, Conflict, Forbidden, NotFound
from collectguard.services.attempts import RESULTS
from collectguard.services.authz import Principal
from collectguard.services.reveal import (
    SOURCE_REFUSALS,
    contact_add_as,
    contact_source_refusal,
    import_contact_source,
    reveal_phone,
)


@pytest.fixture
def w(container):
    ids = seed(container)
    ids["zhang"] = Principal(tenant_id=ids["lender"], tenant_code="lender-a", role="borrower",
                             borrower_id=ids["borrower"], token_id=41)
    ids["auditor"] = Principal(tenant_id=ids["lender"], tenant_code="lender-a", role="auditor", token_id=42)
    return ids


def reads(c):
    with c.uow(write=False) as s:
        return [json.loads(r.payload) for r in s.scalars(select(AuditRecord).where(AuditRecord.action == "pii.read")
                                                          .order_by(AuditRecord.id))]


def test_a_reveal_returns_the_number_and_audits_the_reason(container, w):
    why = "借款人来电要求核对号码"
    phone = reveal_phone(container, principal=w["collector"], borrower_id=w["borrower"], reason=why)
    assert phone == "+8613800138000"
    assert reveal_phone(container, principal=w["collector"], contact_id=w["emergency"],
                        reason="紧急联系人回拨") == "+8613900139000"
    got = reads(container)
    assert [(r["borrower_id"], r["contact_id"], r["field"], r["reason"]) for r in got] == [
        (w["borrower"], None, "phone", why), (w["borrower"], w["emergency"], "phone", "紧急联系人回拨")]


@pytest.mark.parametrize("reason", ["", "   ", "看看", "x" * 501])
def test_no_reason_no_number_and_no_record(container, w, reason):
    with pytest.raises(BadInput) as exc:
        reveal_phone(container, principal=w["collector"], borrower_id=w["borrower"], reason=reason)
    assert exc.value.field == "reason" and reads(container) == []


def test_who_may_reveal_what(container, w):
    with pytest.raises(Forbidden):  # an auditor reads masked data only
        reveal_phone(container, principal=w["auditor"], borrower_id=w["borrower"], reason="审计抽查")
    with pytest.raises(NotFound):  # collectors never see contact-list entries
        reveal_phone(container, principal=w["collector"], contact_id=w["listed"], reason="想打个电话")
    with pytest.raises(NotFound):  # an agency without an open case of the borrower
        reveal_phone(container, principal=w["agent"], borrower_id=w["borrower"], reason="外访前核对")
    with pytest.raises(NotFound):
        reveal_phone(container, principal=w["outsider"], borrower_id=w["borrower"], reason="跨机构查询")
    with pytest.raises(BadInput):
        reveal_phone(container, principal=w["collector"], borrower_id=w["borrower"], contact_id=w["emergency"],
                     reason="两个都要")
    assert reveal_phone(container, principal=w["zhang"], borrower_id=w["borrower"], reason="查看本人号码")


def test_the_borrower_designates_a_contact_tagged_with_its_source(container, w):
    out = contact_add_as(container, principal=w["zhang"], borrower_id=w["borrower"], name="王五", phone="13300133000",
                         relation="emergency_contact")
    assert out == {"id": out["id"], "borrower_id": w["borrower"], "relation": "emergency_contact",
                   "source": "borrower_designated", "phone": "133****3000"}
    with container.uow(write=False) as s:
        row = s.get(Contact, out["id"])
        assert row.designated_by_borrower and container.cipher.decrypt(row.phone_enc) == "+8613300133000"
        audit = s.scalars(select(AuditRecord).where(AuditRecord.action == "contact.add")).one()
        assert json.loads(audit.payload)["by"] == "borrower" and "13300133000" not in audit.payload
    staff = contact_add_as(container, principal=w["collector"], borrower_id=w["borrower"], name="赵六",
                           phone="+8613300133001", relation="relative")
    assert staff["source"] == "borrower_designated"
    with pytest.raises(Conflict):
        contact_add_as(container, principal=w["zhang"], borrower_id=w["borrower"], name="王五", phone="13300133000",
                       relation="spouse")


@pytest.mark.parametrize("source", ["purchased", "data_broker", "repair_service", "operator_call_log",
                                    "contact_list", "public_record", "made_up"])
def test_numbers_from_any_other_source_are_refused_with_the_law(container, w, source):
    with pytest.raises(BadInput) as exc:
        contact_add_as(container, principal=w["officer"], borrower_id=w["borrower"], name="某人", phone="13300133009",
                       relation="other_third_party", source=source)
    refusal = exc.value.detail["refusal"]
    if source in ("purchased", "data_broker", "repair_service", "operator_call_log"):
        assert {"CN:PIPL:10", "CN:PIPL:23", "CN:CL:253-1", "CN:GBT45251"} <= set(refusal["citations"])
    assert refusal["message_zh"] and refusal["message_en"]
    with container.uow(write=False) as s:
        assert s.scalar(select(func.count()).select_from(Contact).where(Contact.phone_hmac == container.cipher
                                                                          .lookup_hash("+8613300133009"))) == 0


def test_citations_are_well_formed_and_the_accepted_source_is_not_refused():
    from collectguard.policy.loader import CITATION_RE

    assert contact_source_refusal("borrower_designated") is None
    assert all(CITATION_RE.match(c) for _zh, _en, cites in SOURCE_REFUSALS.values() for c in cites)


@pytest.mark.parametrize("value, ok", [("borrower_designated", True), ("Contact_List", True), ("purchased", False),
                                       ("data_broker", False), ("operator_call_log", False), ("nonsense", False)])
def test_the_importers_source_validator_cites_the_law_for_broker_sources(value, ok):
    from collectguard.domain.validation import InvalidValue

    if ok:
        assert import_contact_source(value) in ("borrower_designated", "contact_list")
        return
    with pytest.raises(InvalidValue) as exc:
        import_contact_source(value)
    if value != "nonsense":
        assert "CN:CL:253-1" in exc.value.reason and "CN:PIPL:23" in exc.value.reason


@pytest.mark.parametrize("kw, exc", [
    ({"relation": "guarantor"}, BadInput), ({"relation": "contact_list_entry"}, BadInput),
    ({"phone": "12345"}, BadInput), ({"name": " "}, BadInput),
])
def test_bad_designations_are_refused(container, w, kw, exc):
    args = {"name": "王五", "phone": "13300133000", "relation": "emergency_contact", **kw}
    with pytest.raises(exc):
        contact_add_as(container, principal=w["zhang"], borrower_id=w["borrower"], **args)


def test_agencies_and_other_borrowers_cannot_add_contacts(container, w):
    with pytest.raises(Forbidden):
        contact_add_as(container, principal=w["agent"], borrower_id=w["borrower"], name="王五", phone="13300133000",
                       relation="emergency_contact")
    other = dataclasses.replace(w["zhang"], borrower_id=w["borrower2"])
    with pytest.raises(NotFound):
        contact_add_as(container, principal=other, borrower_id=w["borrower"], name="王五", phone="13300133000",
                       relation="emergency_contact")


def test_no_result_code_asks_a_third_party_to_pay_for_the_borrower():
    # GB/T 45251: collect only from the debtor. A code like "third party promises to pay" would make
    # asking a contact to pay a recordable goal; the attempt outcomes have none.
    assert not {r for r in RESULTS if "third" in r or "behalf" in r or "relative" in r or r.startswith("tp")}
    assert set(RESULTS) == {"connected", "no_answer", "busy", "invalid_number", "ptp", "refused",
                            "no_contact_request", "dispute"}
