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


def test_a_value_of_the_wrong_type_is_reported_not_a_crash(container):
    if container.connection.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's typed columns keep such values out")
    _fill(container)
    _sql(container, "UPDATE audit_record SET actor = CAST('user:alice' AS BLOB) WHERE seq = 4")
    assert _broken_at(container) == ("system", 4, "hash mismatch: the record was altered")
    _sql(container, "UPDATE audit_record SET actor = 'user:alice', time = 17 WHERE seq = 4")
    assert _broken_at(container) == ("system", 4, "hash mismatch: the record was altered")


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


# --- Unit boundaries: the parallel walk names exactly the fault a serial walk names ------------------------------
# Units of 10 records: system 1-10, 11-20, 21-30, 31-40; t3 1-10, 11-20, 21-23. Each case tampers with a committed
# database, then a serial walk (this process) and a parallel one (two worker processes, one unit at a time each)
# must both report the expected first fault per chain.

UNIT = 10
MISSING = "missing: the record was deleted"
ALTERED = "hash mismatch: the record was altered"
UNLINKED = "prev_hash does not match the previous record's hash"


def _forge(c, seq: int) -> None:
    """Replace record ``seq``'s payload and recompute its own hash: only the next link can tell."""
    r = _row(c, seq)
    forged = '{"i":0,"msg":"伪造"}'
    h = record_hash(
        r.prev_hash,
        chain="system",
        seq=seq,
        time=hash_time(r.time),
        tenant_id=None,
        actor=r.actor,
        action=r.action,
        subject=r.subject,
        payload_sha256=payload_digest(forged),
    )
    _sql(c, "UPDATE audit_record SET payload = :p, hash = :h WHERE chain = 'system' AND seq = :s", p=forged, h=h, s=seq)


def _swap(c, a: int, b: int) -> None:
    _sql(c, "UPDATE audit_record SET seq = -1 WHERE chain = 'system' AND seq = :a", a=a)
    _sql(c, "UPDATE audit_record SET seq = :a WHERE chain = 'system' AND seq = :b", a=a, b=b)
    _sql(c, "UPDATE audit_record SET seq = :b WHERE chain = 'system' AND seq = -1", b=b)


def _rewrite_tail_under_checkpoint(c) -> None:
    from collectguard.services.audit_signing import audit_signer

    r = _row(c, 20)
    with c.uow() as s:
        s.add(audit_signer(c.settings).checkpoint(chain="system", seq=20, hash=r.hash, now=NOW, tenant_id=None))
    _sql(c, "DELETE FROM audit_record WHERE chain = 'system' AND seq >= 18")
    with c.uow() as s:  # a perfectly linked forgery of 18..40
        for i in range(18, 41):
            audit_append(s, tenant_id=None, actor="user:mallory", action="x", subject="x", payload={"i": i}, now=NOW)


def _upd(column: str, value: str, seq: int, chain: str = "system"):
    return lambda c: _sql(
        c, f"UPDATE audit_record SET {column} = :v WHERE chain = :ch AND seq = :s", v=value, ch=chain, s=seq
    )


def _delete(seq: int):
    return lambda c: _sql(c, "DELETE FROM audit_record WHERE chain = 'system' AND seq = :s", s=seq)


BOUNDARY_CASES = {
    "first record altered": (_upd("actor", "x", 1), [("system", 1, ALTERED)]),
    "last record altered": (_upd("actor", "x", 40), [("system", 40, ALTERED)]),
    "a unit's last record altered": (_upd("subject", "x", 10), [("system", 10, ALTERED)]),
    "a unit's first record altered": (_upd("subject", "x", 11), [("system", 11, ALTERED)]),
    "a unit's last record forged with its own hash right": (lambda c: _forge(c, 10), [("system", 11, UNLINKED)]),
    "a unit's last stored hash overwritten": (_upd("hash", "0" * 64, 20), [("system", 20, ALTERED)]),
    "a unit's first prev_hash overwritten": (_upd("prev_hash", "f" * 64, 21), [("system", 21, UNLINKED)]),
    "first record deleted": (_delete(1), [("system", 1, MISSING)]),
    "a unit's last record deleted": (_delete(10), [("system", 10, MISSING)]),
    "a unit's first record deleted": (_delete(11), [("system", 11, MISSING)]),
    "the head deleted under its checkpoint": (
        _delete(40),
        [("system", 40, "missing: records after this were deleted (a checkpoint signs seq 40)")],
    ),
    "records swapped across a unit boundary": (lambda c: _swap(c, 10, 11), [("system", 10, UNLINKED)]),
    "a short last unit of another chain": (_upd("actor", "x", 23, "t3"), [("t3", 23, ALTERED)]),
    "two chains broken in different units": (
        lambda c: (_upd("actor", "x", 15)(c), _upd("actor", "x", 11, "t3")(c)),
        [("system", 15, ALTERED), ("t3", 11, ALTERED)],
    ),
    "a rewritten tail caught by a checkpoint on a unit's last record": (
        _rewrite_tail_under_checkpoint,
        [("system", 20, "hash differs from the signed checkpoint")],
    ),
}


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def chunked(request, tmp_path_factory):
    """A committed database with two chains (40 and 23 records, heads checkpointed) and its pristine rows."""
    from collectguard.adapters.db.models_audit import AuditCheckpoint

    db = create_database(request.param, tmp_path_factory)
    c = make_container(db)
    _fill(c, 40)
    _fill(c, 23, chain_tenant=3)
    audit_checkpoint_run(c, now=NOW)
    with c.uow(write=False) as s:
        pristine = [
            [dict(m) for m in s.execute(select(t.__table__)).mappings()] for t in (AuditRecord, AuditCheckpoint)
        ]
    yield c, pristine
    db.close()


@pytest.mark.parametrize("case", list(BOUNDARY_CASES))
def test_a_fault_at_a_unit_boundary_is_named_exactly_as_a_serial_walk_names_it(chunked, case, monkeypatch):
    from sqlalchemy import delete, insert

    from collectguard.adapters.db.models_audit import AuditCheckpoint
    from collectguard.services import audit_verify as av

    c, pristine = chunked
    monkeypatch.setattr(av, "MIN_UNIT", 1)
    monkeypatch.setattr(av, "_unit_size", lambda total, workers: UNIT)
    tamper, expected = BOUNDARY_CASES[case]
    tamper(c)
    try:
        serial, parallel = audit_verify_report(c, workers=1), audit_verify_report(c, workers=2)
        assert (serial["workers"], parallel["workers"]) == (1, 2)
        assert [(f["chain"], f["seq"], f["reason"]) for f in serial["faults"]] == expected
        assert parallel["faults"] == serial["faults"]
    finally:
        with c.uow() as s:
            for table, rows in zip((AuditRecord, AuditCheckpoint), pristine, strict=True):
                s.execute(delete(table))
                s.execute(insert(table), rows)
    assert audit_verify_report(c, workers=2)["status"] == "intact"
