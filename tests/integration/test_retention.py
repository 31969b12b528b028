"""Retention: periods as cited data; expired claims are anonymised and the audit chain still verifies."""

from __future__ import annotations

import datetime as dt

from _audit_seed import NAME, noise, seed_borrower
from sqlalchemy import select

from collectguard.adapters.db.models import (
    AuditRecord,
    Borrower,
    Complaint,
    Contact,
    ContactAttempt,
    Decision,
)
from collectguard.services.audit_proof import redaction_digest
from collectguard.services.audit_verify import audit_verify
from collectguard.services.retention import audit_redacted_count, retention_period, retention_run

OLD = dt.datetime(2022, 6, 1, 2, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 4, 7, 2, 0, tzinfo=dt.UTC)


def test_periods_are_data_with_citations():
    cn = retention_period("CN")
    assert cn["years"] == 3 and cn["citations"] == ["CN:GBT45251", "CN:PIPL:56"]  # max(2, 3)
    assert retention_period("US")["years"] == 3 and retention_period("US")["citations"] == ["US:REGF:1006.100(a)"]
    assert retention_period("US", "recordings")["citations"] == ["US:REGF:1006.100(b)"]
    assert retention_period("EU")["years"] == 0 and "EU:GDPR:17(3)(e)" in retention_period("EU")["citations"]


def _world(c) -> dict:
    expired = seed_borrower(c, ext_id="OLD", closed=True, when=OLD)  # closed 2022-06: expired in 2025-06
    recent = seed_borrower(c, ext_id="RECENT", closed=True, when=NOW)  # closed now: kept until 2029
    open_ = seed_borrower(c, ext_id="OPEN", when=OLD)  # open claim: kept whatever its age
    noise(c, n=3)
    return {"expired": expired["borrower_id"], "recent": recent["borrower_id"], "open": open_["borrower_id"]}


def _borrower_state(c, bid: int) -> dict:
    with c.uow(write=False) as s:
        b = s.get(Borrower, bid)
        return {
            "name": c.cipher.decrypt(b.name_enc),
            "messages": [a.message for a in s.scalars(select(ContactAttempt).where(ContactAttempt.borrower_id == bid))],
            "contacts": [
                c.cipher.decrypt(x.phone_enc) for x in s.scalars(select(Contact).where(Contact.borrower_id == bid))
            ],
            "complaints": [x.text for x in s.scalars(select(Complaint).where(Complaint.borrower_id == bid))],
            "decision_messages": [
                d.event.get("message") for d in s.scalars(select(Decision).where(Decision.borrower_id == bid))
            ],
        }


def test_a_dry_run_reports_and_changes_nothing(container):
    ids = _world(container)
    before = _borrower_state(container, ids["expired"])
    summary = retention_run(container, as_of=NOW.date(), now=NOW, dry_run=True)
    assert summary["dry_run"] and summary["borrower_ids"] == [ids["expired"]] and summary["claims_open"] == 1
    assert summary["anonymised"]["audit_payloads"] == 5
    assert _borrower_state(container, ids["expired"]) == before
    with container.uow(write=False) as s:
        assert audit_redacted_count(s) == 0
        assert not s.scalars(select(AuditRecord).where(AuditRecord.action == "retention.run")).first()


def test_expired_data_is_anonymised_and_the_chain_still_verifies(container):
    ids = _world(container)
    with container.uow(write=False) as s:
        hashes_before = dict(s.execute(select(AuditRecord.id, AuditRecord.hash)).all())
    summary = retention_run(container, as_of=NOW.date(), now=NOW)
    assert summary["borrowers_expired"] == 1 and summary["anonymised"]["borrowers"] == 1
    gone = _borrower_state(container, ids["expired"])
    assert gone == {
        "name": "",
        "messages": [None],
        "contacts": ["", ""],
        "complaints": [""],
        "decision_messages": [None],
    }
    for kept in ("recent", "open"):
        state = _borrower_state(container, ids[kept])
        assert state["name"] == NAME and state["messages"][0] and state["contacts"][0]
    with container.uow(write=False) as s:
        assert audit_redacted_count(s) == 5
        assert dict(s.execute(select(AuditRecord.id, AuditRecord.hash)).all()).items() >= hashes_before.items()
        redacted = [r for r in s.scalars(select(AuditRecord)) if redaction_digest(r.payload)]
        assert all(NAME not in r.payload for r in redacted)
        run = s.scalars(select(AuditRecord).where(AuditRecord.action == "retention.run")).one()
        assert str(ids["expired"]) in run.payload
    assert audit_verify(container)["status"] == "intact"
    again = retention_run(container, as_of=NOW.date(), now=NOW)
    assert again["borrowers_expired"] == 0 and again["anonymised"] == {}
    assert audit_verify(container)["status"] == "intact"


def test_recent_claims_expire_after_their_period(container):
    ids = _world(container)
    retention_run(container, as_of=NOW.date(), now=NOW)
    assert retention_run(container, as_of=dt.date(2029, 4, 6), now=NOW)["borrowers_expired"] == 0
    later = retention_run(container, as_of=dt.date(2029, 4, 7), now=NOW)
    assert later["borrower_ids"] == [ids["recent"]]
    assert audit_verify(container)["status"] == "intact"


def test_many_expired_borrowers_are_found_in_one_pass(container):
    ids = [seed_borrower(container, ext_id=f"OLD{i}", closed=True, when=OLD)["borrower_id"] for i in range(3)]
    open_ = seed_borrower(container, ext_id="OPEN")["borrower_id"]
    summary = retention_run(container, as_of=NOW.date(), now=NOW)
    assert sorted(summary["borrower_ids"]) == sorted(ids)
    assert summary["anonymised"]["audit_payloads"] == 15 and summary["anonymised"]["borrowers"] == 3
    with container.uow(write=False) as s:
        guard = [r for r in s.scalars(select(AuditRecord).where(AuditRecord.subject == "guard"))]
        redacted = {r.id for r in guard if redaction_digest(r.payload)}
        assert len(guard) == 4 and len(redacted) == 3  # found by "borrower_id" in the payload; OPEN's kept
        assert all(str(open_) in r.payload for r in guard if r.id not in redacted)
    assert audit_verify(container)["status"] == "intact"
