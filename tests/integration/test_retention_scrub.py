"""Retention also reaches the copies of a borrower's words outside the core tables: QA transcripts
(and the findings' quoted text) and message bodies still held in the outbox."""

from __future__ import annotations

import datetime as dt

from _audit_seed import seed_borrower
from sqlalchemy import select

from collectguard.adapters.db.models_outbox import OutboxMessage
from collectguard.adapters.db.models_qa import QaResultRow
from collectguard.services.audit_verify import audit_verify
from collectguard.services.retention import retention_run

OLD = dt.datetime(2022, 6, 1, 2, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 4, 7, 2, 0, tzinfo=dt.UTC)
SAID = "你再不还钱我们就爆你通讯录"


def _qa_and_outbox(c, seeded: dict) -> None:
    finding = {"rule": "cn.conduct.disclosure_threat", "citations": ["CN:PIPL:10"], "turn": 0, "span": [0, 4],
               "message_zh": "z", "message_en": "e", "severity": "critical", "text": SAID}
    with c.uow() as s:
        s.add(QaResultRow(
            tenant_id=seeded["tenant_id"], transcript_ref=f"T{seeded['case_id']}", case_id=seeded["case_id"],
            collector_ref="c1", jurisdiction="CN", channel="call", call_time=OLD, verdict="violations",
            severity="critical", score=40, findings_count=1, rules="cn.conduct.disclosure_threat",
            result={"verdict": "violations", "findings": [finding], "warnings": [],
                    "signals": [{"turn": 1, "kind": "stop_request", "span": [0, 2], "text": "别打了"}]},
            transcript_sha256=f"{seeded['case_id']:064d}", transcript_enc=c.cipher.encrypt(SAID), sampled=True,
            sample_reason="violations", created_by="qa", created_at=OLD))
        s.add(OutboxMessage(
            message_id=f"m-{seeded['attempt_id']}", tenant_id=seeded["tenant_id"], kind="sms",
            subject=f"contact_attempt:{seeded['attempt_id']}",
            payload={"attempt_id": seeded["attempt_id"], "body": SAID, "channel": "sms"},
            created_at=OLD, available_at=OLD, publish_attempts=1, sent_at=OLD))


def _state(c, seeded: dict) -> tuple[str, dict, str]:
    with c.uow(write=False) as s:
        qa = s.scalars(select(QaResultRow).where(QaResultRow.case_id == seeded["case_id"])).one()
        msg = s.scalars(select(OutboxMessage).where(
            OutboxMessage.subject == f"contact_attempt:{seeded['attempt_id']}")).one()
        return c.cipher.decrypt(qa.transcript_enc), dict(qa.result), msg.payload["body"]


def test_retention_blanks_transcripts_findings_text_and_outbox_bodies(container):
    old = seed_borrower(container, ext_id="OLD", closed=True, when=OLD)
    kept = seed_borrower(container, ext_id="OPEN", when=OLD)
    _qa_and_outbox(container, old)
    _qa_and_outbox(container, kept)
    summary = retention_run(container, as_of=NOW.date(), now=NOW)
    assert summary["borrower_ids"] == [old["borrower_id"]]
    assert summary["anonymised"]["qa_transcripts"] == 1 and summary["anonymised"]["outbox_messages"] == 1
    transcript, result, body = _state(container, old)
    assert transcript == "" and body == "" and result["redacted"] is True
    assert SAID not in str(result) and "别打了" not in str(result)
    assert result["findings"][0]["rule"] == "cn.conduct.disclosure_threat"  # what was found stays
    assert _state(container, kept) == (SAID, _state(container, kept)[1], SAID)
    assert SAID in str(_state(container, kept)[1])
    assert audit_verify(container)["status"] == "intact"
    again = retention_run(container, as_of=NOW.date(), now=NOW)
    assert again["anonymised"] == {}
