"""The chain itself: hash format, checkpoints, shards, and concurrent writers that never fork it."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from collectguard.adapters.db.models import AuditRecord
from collectguard.adapters.db.models_audit import AuditCheckpoint
from collectguard.errors import BadInput
from collectguard.services import audit as audit_mod
from collectguard.services.audit import audit_append, chain_for
from collectguard.services.audit_proof import (
    GENESIS,
    canonical_json,
    chain_walk,
    checkpoint_ok,
    hash_time,
    payload_digest,
    record_hash,
    redacted_payload,
)
from collectguard.services.audit_signing import audit_signer_attach, checkpoint_dict
from collectguard.services.audit_verify import audit_verify
from conftest import create_database, make_container

NOW = dt.datetime(2026, 4, 7, 2, 0, tzinfo=dt.UTC)
texts = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30)


@settings(max_examples=200, deadline=None)
@given(
    chain=texts,
    actor=texts,
    action=texts,
    subject=texts,
    payload=texts,
    tenant=st.one_of(st.none(), st.integers(0, 10**9)),
    seq=st.integers(1, 10**12),
)
def test_the_verifier_hot_path_hashes_exactly_like_record_hash(chain, actor, action, subject, payload, tenant, seq):
    body = canonical_json({"p": payload})
    t = hash_time(NOW)
    h = record_hash(
        GENESIS,
        chain=chain,
        seq=seq,
        time=t,
        tenant_id=tenant,
        actor=actor,
        action=action,
        subject=subject,
        payload_sha256=payload_digest(body),
    )
    for stored in (body, body.encode()):  # PostgreSQL's text, SQLite's bytes
        row = (seq, t, tenant, actor, action, subject, stored, GENESIS, h)
        n, last, head, bad = chain_walk([row], chain=chain, start_seq=seq)
        assert bad is None and (n, last, head) == (1, seq, h)
    sqlite_time = t[:10] + " " + t[11:-1]  # how SQLite stores it: "2026-04-07 02:00:00.000000"
    row = (seq, sqlite_time, tenant, actor, action, subject, body.encode(), GENESIS, h)
    assert chain_walk([row], chain=chain, start_seq=seq, stored_time=True)[3] is None
    marker = redacted_payload(body)
    for stored in (marker, marker.encode()):
        row = (seq, t, tenant, actor, action, subject, stored, GENESIS, h)
        assert chain_walk([row], chain=chain, start_seq=seq)[3] is None


def test_redaction_keeps_the_digest_and_so_the_hash():
    body = canonical_json({"name": "张三", "phone": "13800001234"})
    marker = redacted_payload(body)
    assert marker == canonical_json({"payload_sha256": payload_digest(body), "redacted": True})
    assert payload_digest(marker) == payload_digest(body) and redacted_payload(marker) == marker


def test_append_links_records_and_refuses_ambiguous_input(container):
    with container.uow() as s:
        a = audit_append(s, tenant_id=None, actor="t", action="x", subject="s", payload={"a": 1}, now=NOW)
        b = audit_append(s, tenant_id=None, actor="t", action="y", subject="s", payload={"b": "中"}, now=NOW)
        assert (a.seq, b.seq, a.prev_hash, b.prev_hash) == (1, 2, GENESIS, a.hash)
        with pytest.raises(BadInput, match="redaction marker"):
            audit_append(
                s,
                tenant_id=None,
                actor="t",
                action="x",
                subject="s",
                payload={"payload_sha256": "0" * 64, "redacted": True},
                now=NOW,
            )
        with pytest.raises(BadInput, match="timezone"):
            audit_append(
                s,
                tenant_id=None,
                actor="t",
                action="x",
                subject="s",
                payload={},
                now=NOW.replace(tzinfo=None),
            )


def test_shard_chains_are_deterministic():
    assert chain_for(None) == "system" and chain_for(7) == "t7"
    assert chain_for(7, "12345") == chain_for(7, "12345")
    assert {chain_for(7, str(i)) for i in range(500)} == {f"t7.s{i:02d}" for i in range(audit_mod.AUDIT_SHARDS)}


def test_every_nth_record_gets_a_signed_checkpoint_in_the_same_transaction(container, monkeypatch):
    monkeypatch.setattr(audit_mod, "CHECKPOINT_EVERY", 3)
    audit_signer_attach(container)
    with container.uow() as s:
        for i in range(7):
            audit_append(
                s,
                tenant_id=1,
                actor="t",
                action="x",
                subject=f"s:{i}",
                payload={"i": i},
                now=NOW,
                shard_key="42",
            )
    with container.uow(write=False) as s:
        cps = list(s.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq)))
        assert [(cp.chain, cp.seq) for cp in cps] == [(chain_for(1, "42"), 3), (chain_for(1, "42"), 6)]
        assert all(checkpoint_ok(checkpoint_dict(cp)) for cp in cps)
    assert audit_verify(container)["checkpoints"] == 2


def _append_many(url: str, worker: int, n: int, chains: int) -> None:
    """A writer with its own engine and a unit of work per record, as separate API workers are."""
    from conftest import Database

    db = Database.__new__(Database)
    db.backend, db.url = "x", url
    from collectguard.adapters.db.engine import make_engine

    db.engine = make_engine(url)
    c = make_container(db)
    for i in range(n):
        with c.uow() as s:
            audit_append(
                s,
                tenant_id=1,
                actor=f"w{worker}",
                action="x",
                subject=f"w{worker}:{i}",
                payload={"w": worker, "i": i},
                now=NOW,
                shard_key=str(i % chains) if chains > 1 else None,
            )
    db.engine.dispose()


def _assert_no_fork_no_gap(db, expected: int) -> None:
    c = make_container(db)
    with c.uow(write=False) as s:
        rows = s.execute(
            select(AuditRecord.chain, AuditRecord.seq, AuditRecord.prev_hash, AuditRecord.hash).order_by(
                AuditRecord.chain, AuditRecord.seq
            )
        ).all()
    assert len(rows) == expected
    by_chain: dict[str, list] = {}
    for r in rows:
        by_chain.setdefault(r.chain, []).append(r)
    for chain_rows in by_chain.values():
        assert [r.seq for r in chain_rows] == list(range(1, len(chain_rows) + 1))  # no gap, no duplicate
        prevs = [r.prev_hash for r in chain_rows]
        assert prevs == [GENESIS] + [r.hash for r in chain_rows[:-1]]  # one line: no fork
    report = audit_verify(c)
    assert report["records"] == expected and report["status"] == "intact"


@pytest.mark.parametrize("chains", [1, 4])
def test_concurrent_threads_never_fork_a_chain(database, tmp_path_factory, chains):
    db = create_database(database.backend, tmp_path_factory)
    try:
        threads = [threading.Thread(target=_append_many, args=(db.url, w, 25, chains)) for w in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        _assert_no_fork_no_gap(db, 6 * 25)
    finally:
        db.close()


def test_concurrent_processes_never_fork_a_sqlite_chain(tmp_path_factory):
    db = create_database("sqlite", tmp_path_factory)
    try:
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_append_many, args=(db.url, w, 20, 1)) for w in range(3)]
        threads = [threading.Thread(target=_append_many, args=(db.url, 10 + w, 20, 1)) for w in range(2)]
        for p in procs:
            p.start()
        for t in threads:
            t.start()
        for p in procs:
            p.join(120)
            assert p.exitcode == 0
        for t in threads:
            t.join()
        _assert_no_fork_no_gap(db, 5 * 20)
    finally:
        db.close()
