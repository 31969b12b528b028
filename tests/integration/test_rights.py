"""Rights requests: access gives everything, decrypted; deletion erases the unneeded, refuses the rest."""

from __future__ import annotations

import datetime as dt

from _audit_seed import CONTACT_PHONE, NAME, PHONE, seed_borrower
from sqlalchemy import select

from collectguard.adapters.db.models import AuditRecord, Borrower, Consent, Contact, RightsRequest
from collectguard.services.audit_verify import audit_verify
from collectguard.services.rights import rights_request_access, rights_request_delete

NOW = dt.datetime(2026, 4, 7, 2, 0, tzinfo=dt.UTC)


def _actions(c) -> list[str]:
    with c.uow(write=False) as s:
        return list(s.scalars(select(AuditRecord.action).order_by(AuditRecord.id)))


def test_access_returns_everything_decrypted_and_is_recorded(container):
    ids = seed_borrower(container)
    out = rights_request_access(container, borrower_id=ids["borrower_id"], now=NOW)
    d = out["data"]
    assert d["borrower"]["name"] == NAME and d["borrower"]["phone"] == PHONE and "name_enc" not in d["borrower"]
    assert CONTACT_PHONE in {ct["phone"] for ct in d["contacts"]}
    assert d["loans"][0]["principal"] == "5000.00" and d["contact_attempts"][0]["message"].startswith(NAME)
    assert {"decisions", "consents", "complaints", "promises_to_pay", "audit_records"} <= set(d)
    assert len(d["audit_records"]) == 6  # the five seeded, and this access itself
    assert d["audit_records"][-1]["action"] == "rights.access" and d["audit_records"][0]["time"].endswith("Z")
    with container.uow(write=False) as s:
        req = s.get(RightsRequest, out["request_id"])
        assert (req.kind, req.status) == ("access", "done")
    assert _actions(container)[-1] == "rights.access"


def test_deletion_with_an_open_claim_erases_the_contact_list_and_refuses_the_rest(container):
    ids = seed_borrower(container, jurisdiction="EU")
    out = rights_request_delete(container, borrower_id=ids["borrower_id"], now=NOW)
    assert out["status"] == "partial" and out["deleted"]["contact_list_entries"] == 1
    assert out["deleted"]["contact_list_consents_withdrawn"] == 1
    (kept,) = out["kept"]
    assert kept["reason"] == "legal_claim" and kept["citations"] == ["EU:GDPR:17(3)(e)"] and kept["reason_zh"]
    with container.uow(write=False) as s:
        contacts = {ct.source: ct for ct in s.scalars(select(Contact))}
        assert container.cipher.decrypt(contacts["contact_list"].phone_enc) == ""
        assert contacts["contact_list"].no_contact_requested
        assert container.cipher.decrypt(contacts["borrower_designated"].phone_enc) == CONTACT_PHONE
        assert container.cipher.decrypt(s.get(Borrower, ids["borrower_id"]).name_enc) == NAME
        assert s.scalars(select(Consent)).one().withdrawn_at is not None
        req = s.get(RightsRequest, out["request_id"])
        assert req.kind == "deletion" and req.detail["kept"][0]["reason"] == "legal_claim"
    assert _actions(container)[-1] == "rights.delete"
    assert audit_verify(container)["status"] == "intact"


def test_deletion_inside_the_retention_period_keeps_the_records(container):
    ids = seed_borrower(container, closed=True, when=NOW)
    out = rights_request_delete(container, borrower_id=ids["borrower_id"], now=NOW)
    assert out["status"] == "partial" and out["deleted"]["contacts"] == 1
    (kept,) = out["kept"]
    assert kept["reason"] == "retention" and kept["until"] == "2029-04-07"
    assert kept["citations"] == ["CN:GBT45251", "CN:PIPL:56"]


def test_deletion_after_the_retention_period_erases_everything(container):
    ids = seed_borrower(container, closed=True, when=dt.datetime(2021, 1, 4, tzinfo=dt.UTC))
    out = rights_request_delete(container, borrower_id=ids["borrower_id"], now=NOW)
    assert out["status"] == "done" and out["kept"] == [] and out["deleted"]["borrowers"] == 1
    assert out["deleted"]["audit_payloads"] == 5
    with container.uow(write=False) as s:
        assert container.cipher.decrypt(s.get(Borrower, ids["borrower_id"]).name_enc) == ""
    assert audit_verify(container)["status"] == "intact"
