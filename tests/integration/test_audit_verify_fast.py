"""The columnar accelerator of ``audit verify`` never changes a verdict: fast path == exact walk, both backends.

Random chains (unicode, control characters, quotes and backslashes in the header fields, redacted
payloads, NULL tenants, several chains, signed checkpoints) get random tampering; the report with
the accelerator (small units, one or two workers) must equal the report of the exact walk alone,
fault for fault. The unit-boundary cases of ``test_audit_verify`` are run through it as well.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, text

from collectguard.adapters.db.models import AuditRecord
from collectguard.adapters.db.models_audit import AuditCheckpoint
from collectguard.services import audit_verify as av
from collectguard.services import audit_verify_fast as fast
from collectguard.services.audit_proof import GENESIS, hash_time, payload_digest, record_hash, redacted_payload
from collectguard.services.audit_signing import audit_signer
from conftest import create_database, make_container

pytestmark = pytest.mark.skipif(
    any(fast.find_spec(m) is None for m in ("polars", "polars_hash", "pyarrow", "adbc_driver_sqlite")),
    reason="the accelerator's packages are not installed",
)

T0 = dt.datetime(2026, 4, 7, 2, 0, tzinfo=dt.UTC)
TRICKY = ['"', "\\", "\n", "\t", "\x01", "\x1f", "\x7f", "中", "😀", "\u2028", "é", " ", "{", "}", ":"]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request, tmp_path_factory):
    d = create_database(request.param, tmp_path_factory)
    yield d
    d.close()


def _texts(backend: str) -> st.SearchStrategy[str]:
    chars = st.characters(codec="utf-8", exclude_characters="\x00" if backend == "postgres" else None)
    return st.text(st.one_of(chars, st.sampled_from(TRICKY)), max_size=8)


@st.composite
def scenarios(draw, backend: str):
    texts = _texts(backend)
    chains = {"system": None, "t7": 7} if draw(st.booleans()) else {"system": None}
    records = []
    for chain, tenant in chains.items():
        prev = GENESIS
        for seq in range(1, draw(st.integers(1, 30)) + 1):
            payload = draw(st.one_of(texts, st.just('{"a":1}')))
            if draw(st.integers(0, 5)) == 0:
                payload = redacted_payload(payload)
            rec = {
                "chain": chain,
                "seq": seq,
                "time": T0 + dt.timedelta(seconds=seq, microseconds=draw(st.integers(0, 999_999))),
                "tenant_id": tenant,
                "actor": draw(st.one_of(st.just("user:alice"), texts)),
                "action": draw(st.one_of(st.just("contact_attempt.create"), texts)),
                "subject": draw(texts),
                "payload": payload,
                "prev_hash": prev,
            }
            rec["hash"] = prev = _hash(rec)
            records.append(rec)
    n_ops = draw(st.integers(0, 3))
    ops = [draw(_op(backend, texts, records)) for _ in range(n_ops)]
    cps = draw(st.lists(st.tuples(st.sampled_from(records), st.booleans()), max_size=3))
    return records, ops, cps, draw(st.integers(2, 12)), draw(st.sampled_from([1, 2]))


def _hash(rec, payload=None):
    return record_hash(
        rec["prev_hash"],
        chain=rec["chain"],
        seq=rec["seq"],
        time=hash_time(rec["time"]),
        tenant_id=rec["tenant_id"],
        actor=rec["actor"],
        action=rec["action"],
        subject=rec["subject"],
        payload_sha256=payload_digest(rec["payload"] if payload is None else payload),
    )


def _naive_hash(rec):
    import hashlib

    ten = "null" if rec["tenant_id"] is None else rec["tenant_id"]
    body = (
        f'{rec["prev_hash"]}{{"action":"{rec["action"]}","actor":"{rec["actor"]}","chain":"{rec["chain"]}",'
        f'"payload_sha256":"{payload_digest(rec["payload"])}","seq":{rec["seq"]},"subject":"{rec["subject"]}",'
        f'"tenant":{ten},"time":"{hash_time(rec["time"])}"}}'
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _op(backend, texts, records):
    rec = st.sampled_from(records)
    kinds = [
        st.tuples(st.just("set"), rec, st.sampled_from(["actor", "action", "subject", "payload"]), texts),
        st.tuples(st.just("set"), rec, st.just("tenant_id"), st.one_of(st.none(), st.integers(0, 9))),
        st.tuples(st.just("set"), rec, st.sampled_from(["hash", "prev_hash"]), st.sampled_from(["f" * 64, GENESIS])),
        st.tuples(st.just("set"), rec, st.just("time"), st.just(T0)),
        st.tuples(st.just("delete"), rec),
        st.tuples(st.just("swap"), rec, rec),
        st.tuples(st.just("forge"), rec, texts),
        st.tuples(st.just("marker"), rec, st.sampled_from(["a" * 64, "A" * 64, "g" * 64])),
        st.tuples(st.just("naive"), rec, texts),
    ]
    if backend == "sqlite":  # SQLite keeps values of any type: PostgreSQL's columns refuse them
        odd = ["CAST(actor AS BLOB)", "17", "'abc'", "2.5", "X'00'", "NULL"]
        cols = ["actor", "subject", "time", "tenant_id", "hash", "prev_hash", "payload"]
        kinds.append(st.tuples(st.just("sql"), rec, st.sampled_from(cols), st.sampled_from(odd)))
    return st.one_of(kinds)


def _where(rec):
    return {"ch": rec["chain"], "s": rec["seq"]}


def _apply(c, op) -> None:
    kind, rec = op[0], op[1]
    w = "WHERE chain = :ch AND seq = :s"
    with c.uow() as s:
        if kind == "set":
            s.execute(text(f"UPDATE audit_record SET {op[2]} = :v {w}"), {"v": op[3], **_where(rec)})
        elif kind == "delete":
            s.execute(text(f"DELETE FROM audit_record {w}"), _where(rec))
        elif kind == "swap" and op[2]["chain"] == rec["chain"] and op[2]["seq"] != rec["seq"]:
            a, b = rec["seq"], op[2]["seq"]
            s.execute(text(f"UPDATE audit_record SET seq = -1 {w}"), _where(rec))
            s.execute(text(f"UPDATE audit_record SET seq = :a {w}"), {"a": a, **_where(op[2])})
            s.execute(
                text("UPDATE audit_record SET seq = :b WHERE chain = :ch AND seq = -1"), {"b": b, "ch": rec["chain"]}
            )
        elif kind == "forge":  # a new payload with the record's own hash recomputed: only the next link tells
            s.execute(
                text(f"UPDATE audit_record SET payload = :p, hash = :h {w}"),
                {"p": op[2], "h": _hash(rec, op[2]), **_where(rec)},
            )
        elif kind == "naive":  # a forger who renders the header without JSON escaping: must never verify
            subject = op[2] + '"\\'
            h = _naive_hash({**rec, "subject": subject})
            s.execute(
                text(f"UPDATE audit_record SET subject = :v, hash = :h {w}"), {"v": subject, "h": h, **_where(rec)}
            )
        elif kind == "marker":
            p = '{"payload_sha256":"' + op[2] + '","redacted":true}'
            s.execute(text(f"UPDATE audit_record SET payload = :p {w}"), {"p": p, **_where(rec)})
        elif kind == "sql":
            s.execute(text(f"UPDATE audit_record SET {op[2]} = {op[3]} {w}"), _where(rec))


def _load(c, records, cps) -> None:
    signer = audit_signer(c.settings)
    with c.uow() as s:
        s.execute(text("DELETE FROM audit_checkpoint"))
        s.execute(text("DELETE FROM audit_record"))
        if records:
            s.execute(insert(AuditRecord), records)
        done = set()
        for rec, right in cps:
            if (rec["chain"], rec["seq"]) not in done:
                done.add((rec["chain"], rec["seq"]))
                h = rec["hash"] if right else "e" * 64
                s.add(signer.checkpoint(chain=rec["chain"], seq=rec["seq"], hash=h, now=T0, tenant_id=rec["tenant_id"]))


def _report(c, monkeypatch, *, accelerated: bool, unit: int, workers: int):
    monkeypatch.setattr(av, "FAST", accelerated)
    monkeypatch.setattr(av, "FAST_BACKENDS", frozenset({"sqlite", "postgresql"}))
    monkeypatch.setattr(av, "FAST_MIN", 0)
    monkeypatch.setattr(av, "MIN_UNIT", 1)
    monkeypatch.setattr(av, "_unit_size", lambda total, w: unit)
    r = av.audit_verify_report(c, workers=workers)
    return r["status"], r["faults"], r["records"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_accelerator_reports_exactly_what_the_exact_walk_reports(db, data, monkeypatch):
    records, ops, cps, unit, workers = data.draw(scenarios(db.backend))
    c = make_container(db)
    _load(c, records, cps)
    for op in ops:
        try:
            _apply(c, op)
        except Exception:  # a tampering the schema refuses (NOT NULL, unique): skip it
            continue
    exact = _report(c, monkeypatch, accelerated=False, unit=unit, workers=1)
    assert _report(c, monkeypatch, accelerated=True, unit=unit, workers=workers) == exact


def test_an_intact_chain_is_vouched_for_by_the_accelerator_alone(db, monkeypatch):
    """No fallback on clean data, also with tricky text: the exact walk is never asked."""
    c = make_container(db)
    records = []
    prev = GENESIS
    for seq in range(1, 61):
        rec = {
            "chain": "system",
            "seq": seq,
            "time": T0,
            "tenant_id": None,
            "actor": 'a"\\\n中',
            "action": "x",
            "subject": f"s:{seq}",
            "payload": redacted_payload("p") if seq % 7 == 0 else f"p{seq}",
            "prev_hash": prev,
        }
        rec["hash"] = prev = _hash(rec)
        records.append(rec)
    _load(c, records, [(records[29], True)])
    monkeypatch.setattr(av, "_verify_unit", lambda *a: pytest.fail("the exact walk was asked"))
    assert _report(c, monkeypatch, accelerated=True, unit=20, workers=2) == ("intact", [], 60)


def test_without_the_packages_the_exact_walk_decides(db, monkeypatch):
    c = make_container(db)
    rec = {
        "chain": "system",
        "seq": 1,
        "time": T0,
        "tenant_id": None,
        "actor": "a",
        "action": "b",
        "subject": "c",
        "payload": "{}",
        "prev_hash": GENESIS,
    }
    rec["hash"] = "0" * 64
    _load(c, [rec], [])
    monkeypatch.setattr(fast, "find_spec", lambda name: None)
    assert fast.source(c.engine) is None
    assert _report(c, monkeypatch, accelerated=True, unit=5, workers=1)[1] == [
        {"chain": "system", "seq": 1, "reason": "hash mismatch: the record was altered"}
    ]


def test_a_failing_accelerator_hands_everything_to_the_exact_walk(db, monkeypatch):
    import subprocess
    import sys

    c = make_container(db)
    rec = {
        "chain": "system",
        "seq": 1,
        "time": T0,
        "tenant_id": None,
        "actor": "a",
        "action": "b",
        "subject": "c",
        "payload": "{}",
        "prev_hash": GENESIS,
    }
    rec["hash"] = _hash(rec)
    _load(c, [rec], [])
    backend, dsn = fast.source(c.engine)
    assert _in_worker(backend, dsn, [("system", 1, 1, {}), ("system", 1, 1, {1: "e" * 64})]) == [None, 1]
    assert _in_worker(backend, dsn + "-gone", [("system", 1, 1, {})]) == [1]  # any failure: resume at lo
    assert _in_worker(backend, dsn, [("it's", 1, 1, {})]) == [1]  # PostgreSQL: a name not inlinable in SQL
    dead = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"], stdout=subprocess.PIPE)
    assert fast.collect(dead) is None
    monkeypatch.setattr(av, "_accelerate", lambda *a: None)  # e.g. a worker died
    assert _report(c, monkeypatch, accelerated=True, unit=5, workers=1) == ("intact", [], 1)


def _in_worker(backend, dsn, units):
    # Never in this process on SQLite: ADBC's own copy of SQLite must not open a file this process has
    # open through Python's sqlite3 (closing it drops this process's locks and WAL; see _accelerate).
    proc = fast.spawn()
    fast.send(proc, backend, dsn, units, 2)
    return fast.collect(proc)


def test_the_unit_boundary_cases_through_the_accelerator(db, monkeypatch):
    """The tampering table of test_audit_verify, with the accelerator on and units of ten."""
    from test_audit_verify import BOUNDARY_CASES, _fill

    from collectguard.services.audit_signing import audit_checkpoint_run

    c = make_container(db)
    _load(c, [], [])
    _fill(c, 40)
    _fill(c, 23, chain_tenant=3)
    audit_checkpoint_run(c, now=T0)
    with c.uow(write=False) as s:
        from sqlalchemy import select

        pristine = [
            [dict(m) for m in s.execute(select(t.__table__)).mappings()] for t in (AuditRecord, AuditCheckpoint)
        ]
    for case, (tamper, expected) in BOUNDARY_CASES.items():
        tamper(c)
        try:
            got = _report(c, monkeypatch, accelerated=True, unit=10, workers=2)
            assert [(f["chain"], f["seq"], f["reason"]) for f in got[1]] == expected, case
        finally:
            with c.uow() as s:
                for table, rows in zip((AuditRecord, AuditCheckpoint), pristine, strict=True):
                    s.execute(table.__table__.delete())
                    s.execute(insert(table), rows)


@pytest.mark.parametrize(
    "column,stored,rendered",
    [
        ("time", "17", "17TZ"),  # DATETIME has NUMERIC affinity: an integer stays one
        ("tenant_id", "'abc'", "abc"),  # the exact walk renders such a tenant as it is, and so verifies it
        ("actor", "CAST('user:alice' AS BLOB)", "user:alice"),
    ],
)
def test_a_value_of_another_type_with_a_hash_forged_over_its_text_gets_the_exact_verdict(
    db, monkeypatch, column, stored, rendered
):
    """The forger stores a value of another storage class and hashes what a careless renderer would see."""
    if db.backend != "sqlite":
        pytest.skip("PostgreSQL's typed columns keep such values out")
    c = make_container(db)
    records, prev = [], GENESIS
    for seq in range(1, 13):
        rec = {
            "chain": "system",
            "seq": seq,
            "time": T0,
            "tenant_id": None,
            "actor": "user:alice",
            "action": "x",
            "subject": f"s:{seq}",
            "payload": f"p{seq}",
            "prev_hash": prev,
        }
        rec["hash"] = prev = _hash(rec)
        records.append(rec)
    _load(c, records, [])
    forged = records[4]
    import hashlib

    fields = {"time": hash_time(T0), "tenant": "null", "actor": '"user:alice"'}
    fields[{"tenant_id": "tenant"}.get(column, column)] = rendered if column != "actor" else f'"{rendered}"'
    body = (
        f'{forged["prev_hash"]}{{"action":"x","actor":{fields["actor"]},"chain":"system",'
        f'"payload_sha256":"{payload_digest("p5")}","seq":5,"subject":"s:5","tenant":{fields["tenant"]},'
        f'"time":"{fields["time"]}"}}'
    )
    h = hashlib.sha256(body.encode()).hexdigest()
    with c.uow() as s:
        s.execute(text(f"UPDATE audit_record SET {column} = {stored}, hash = :h WHERE seq = 5"), {"h": h})
    exact = _report(c, monkeypatch, accelerated=False, unit=4, workers=1)
    assert _report(c, monkeypatch, accelerated=True, unit=4, workers=2) == exact
    # The exact walk renders a text tenant as it is, so record 5 verifies and only the next link breaks.
    assert exact[1][0]["seq"] == (6 if column == "tenant_id" else 5)
