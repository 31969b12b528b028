"""``audit verify`` finds and locates (chain, first broken seq) every kind of tampering, on both backends."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, text

from collectguard.adapters.db.models import AuditRecord
from collectguard.errors import IntegrityFault
from collectguard.services.audit import audit_append
from collectguard.services.audit_proof import hash_time, payload_digest, record_hash
from collectguard.services.audit_signing import AuditSigner, audit_checkpoint_run
from collectguard.services.audit_verify import audit_verify, audit_verify_report
from conftest import create_database, make_container

NOW = dt.datetime(2026, 4, 7, 2, 0, tzinfo=dt.UTC)
N = 12


def _fill(c, n: int = N, chain_tenant: int | None = None) -> None:
    with c.uow() as s:
        for i in range(n):
            audit_append(
                s,
                tenant_id=chain_tenant,
                actor="user:alice",
                action="contact_attempt.create",
                subject=f"contact_attempt:{i}",
                payload={"i": i, "msg": f"第{i}次"},
                now=NOW + dt.timedelta(seconds=i),
            )


def _sql(c, sql: str, **params) -> None:
    with c.uow() as s:
        s.execute(text(sql), params)


def _broken_at(c) -> tuple[str, int, str]:
    with pytest.raises(IntegrityFault) as exc:
        audit_verify(c)
    f = exc.value.detail["faults"][0]
    assert f"seq {f['seq']}" in exc.value.message and f["chain"] in exc.value.message
    return f["chain"], f["seq"], f["reason"]


def _row(c, seq: int) -> AuditRecord:
    with c.uow(write=False) as s:
        return s.scalars(select(AuditRecord).where(AuditRecord.chain == "system", AuditRecord.seq == seq)).one()


def test_an_intact_chain_verifies(container):
    _fill(container)
    _fill(container, chain_tenant=5)
    report = audit_verify(container)
    assert report["status"] == "intact" and report["records"] == 2 * N and report["chains"] == 2
    assert report["faults"] == [] and {h["chain"] for h in report["heads"]} == {"system", "t5"}


@pytest.mark.parametrize(
    "column,value",
    [
        ("payload", '{"i":5,"msg":"已付清"}'),
        ("actor", "user:mallory"),
        ("subject", "contact_attempt:99"),
        ("tenant_id", 9),
    ],
)
def test_an_altered_record_is_located(container, column, value):
    _fill(container)
    _sql(container, f"UPDATE audit_record SET {column} = :v WHERE chain = 'system' AND seq = 5", v=value)
    assert _broken_at(container) == ("system", 5, "hash mismatch: the record was altered")


def test_an_altered_time_is_located(container):
    _fill(container)
    with container.uow() as s:
        rec = s.scalars(select(AuditRecord).where(AuditRecord.seq == 7)).one()
        rec.time = rec.time - dt.timedelta(hours=1)
    assert _broken_at(container)[:2] == ("system", 7)


def test_an_altered_record_with_its_hash_recomputed_breaks_the_next_link(container):
    _fill(container)
    r = _row(container, 5)
    forged = '{"i":5,"msg":"从未发生"}'
    h = record_hash(
        r.prev_hash,
        chain="system",
        seq=5,
        time=hash_time(r.time),
        tenant_id=None,
        actor=r.actor,
        action=r.action,
        subject=r.subject,
        payload_sha256=payload_digest(forged),
    )
    _sql(container, "UPDATE audit_record SET payload = :p, hash = :h WHERE seq = 5", p=forged, h=h)
    assert _broken_at(container) == ("system", 6, "prev_hash does not match the previous record's hash")


def test_a_deleted_record_is_located(container):
    _fill(container)
    _sql(container, "DELETE FROM audit_record WHERE seq = 4")
    assert _broken_at(container) == ("system", 4, "missing: the record was deleted")


def test_an_inserted_record_is_located(container):
    _fill(container)
    # The attacker makes room at seq 6 (two steps: the unique index is checked row by row) and forges a
    # record whose own hash is right: the chain breaks where the original seq 6, now 7, no longer links.
    _sql(container, "UPDATE audit_record SET seq = -seq - 1 WHERE seq >= 6")
    _sql(container, "UPDATE audit_record SET seq = -seq WHERE seq < 0")
    prev = _row(container, 5)
    payload = '{"i":"x","msg":"伪造"}'
    h = record_hash(
        prev.hash,
        chain="system",
        seq=6,
        time=hash_time(NOW),
        tenant_id=None,
        actor="user:alice",
        action="contact_attempt.create",
        subject="contact_attempt:x",
        payload_sha256=payload_digest(payload),
    )
    with container.uow() as s:
        s.add(
            AuditRecord(
                chain="system",
                seq=6,
                time=NOW,
                tenant_id=None,
                actor="user:alice",
                action="contact_attempt.create",
                subject="contact_attempt:x",
                payload=payload,
                prev_hash=prev.hash,
                hash=h,
            )
        )
    chain, seq, reason = _broken_at(container)
    assert (chain, seq) == ("system", 7) and "prev_hash" in reason


def test_a_naively_inserted_record_is_located(container):
    _fill(container)
    _sql(container, "UPDATE audit_record SET seq = -seq - 1 WHERE seq >= 6")
    _sql(container, "UPDATE audit_record SET seq = -seq WHERE seq < 0")
    prev = _row(container, 5)
    with container.uow() as s:
        s.add(
            AuditRecord(
                chain="system",
                seq=6,
                time=NOW,
                tenant_id=None,
                actor="x",
                action="x",
                subject="x",
                payload="{}",
                prev_hash=prev.hash,
                hash="f" * 64,
            )
        )
    assert _broken_at(container) == ("system", 6, "hash mismatch: the record was altered")


def test_reordered_records_are_located(container):
    _fill(container)
    _sql(container, "UPDATE audit_record SET seq = -1 WHERE seq = 8")
    _sql(container, "UPDATE audit_record SET seq = 8 WHERE seq = 9")
    _sql(container, "UPDATE audit_record SET seq = 9 WHERE seq = -1")
    assert _broken_at(container)[:2] == ("system", 8)


def test_a_truncated_tail_is_caught_by_the_signed_checkpoint(container):
    _fill(container)
    audit_checkpoint_run(container, now=NOW)
    _sql(container, "DELETE FROM audit_record WHERE seq >= 10")
    chain, seq, reason = _broken_at(container)
    assert (chain, seq) == ("system", 10) and "checkpoint signs seq 12" in reason


def test_a_rewritten_consistent_tail_is_caught_by_the_signed_checkpoint(container):
    _fill(container)
    audit_checkpoint_run(container, now=NOW)
    _sql(container, "DELETE FROM audit_record WHERE seq >= 8")
    _fill_from(container, 8)  # a perfectly linked forgery of seq 8..12
    assert _broken_at(container) == ("system", 12, "hash differs from the signed checkpoint")


def _fill_from(c, start: int) -> None:
    with c.uow() as s:
        for i in range(start, N + 1):
            audit_append(s, tenant_id=None, actor="user:mallory", action="x", subject="x", payload={"i": i}, now=NOW)


def test_a_checkpoint_forged_with_another_key_is_refused(container):
    _fill(container)
    audit_checkpoint_run(container, now=NOW)
    rogue = AuditSigner(b"\x01" * 32)
    r = _row(container, N)
    cp = rogue.checkpoint(chain="system", seq=N, hash=r.hash, now=NOW, tenant_id=None)
    _sql(
        container,
        "UPDATE audit_checkpoint SET key_id = :k, public_key = :p, signature = :s",
        k=cp.key_id,
        p=cp.public_key,
        s=cp.signature,
    )
    assert "unknown key" in _broken_at(container)[2]
    _sql(container, "UPDATE audit_checkpoint SET signature = :s", s="00" * 64)
    assert _broken_at(container)[2] == "checkpoint signature invalid"


def test_redacted_payloads_still_verify(container):
    from collectguard.services.audit_proof import redacted_payload

    _fill(container)
    r = _row(container, 3)
    _sql(container, "UPDATE audit_record SET payload = :p WHERE seq = 3", p=redacted_payload(r.payload))
    assert audit_verify(container)["status"] == "intact"
    _sql(
        container,
        "UPDATE audit_record SET payload = :p WHERE seq = 3",
        p='{"payload_sha256":"' + "a" * 64 + '","redacted":true}',
    )
    assert _broken_at(container)[:2] == ("system", 3)


def test_parallel_workers_agree_with_the_serial_walk(database, tmp_path_factory, monkeypatch):
    from collectguard.services import audit_verify as av

    monkeypatch.setattr(av, "MIN_UNIT", 5)  # many small units over two worker processes
    db = create_database(database.backend, tmp_path_factory)
    try:
        c = make_container(db)
        _fill(c, 40)
        _fill(c, 23, chain_tenant=3)
        serial, parallel = audit_verify_report(c, workers=1), audit_verify_report(c, workers=2)
        assert serial["status"] == parallel["status"] == "intact"
        assert serial["records"] == parallel["records"] == 63
        for seq in (5, 6, 17):  # unit boundaries and a unit's middle
            _sql(c, "UPDATE audit_record SET actor = 'x' WHERE chain = 'system' AND seq = :s", s=seq)
            assert audit_verify_report(c, workers=2)["faults"][0]["seq"] == seq
            assert audit_verify_report(c, workers=1)["faults"][0]["seq"] == seq
            _sql(c, "UPDATE audit_record SET actor = 'user:alice' WHERE chain = 'system' AND seq = :s", s=seq)
        _sql(c, "DELETE FROM audit_record WHERE chain = 't3' AND seq = 11")
        assert audit_verify_report(c, workers=2)["faults"] == [
            {"chain": "t3", "seq": 11, "reason": "missing: the record was deleted"}
        ]
    finally:
        db.close()


def test_checkpoint_signs_missed_boundaries_and_heads(container, monkeypatch):
    from collectguard.services import audit as audit_mod
    from collectguard.services import audit_signing

    monkeypatch.setattr(audit_mod, "CHECKPOINT_EVERY", 5)
    monkeypatch.setattr(audit_signing, "CHECKPOINT_EVERY", 5)
    _fill(container)  # no signer attached: the boundaries 5 and 10 are left for the job
    _fill(container, 3, chain_tenant=2)
    out = audit_checkpoint_run(container, now=NOW)
    assert [(c["chain"], c["seq"]) for c in out["checkpoints"]] == [
        ("system", 5),
        ("system", 10),
        ("system", 12),
        ("t2", 3),
    ]
    assert audit_checkpoint_run(container, now=NOW)["signed"] == 0  # idempotent
    report = audit_verify(container, chain="t2")
    assert report["records"] == 3 and report["checkpoints"] == 4 and [h["chain"] for h in report["heads"]] == ["t2"]
