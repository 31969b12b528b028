"""``audit verify``: stream every chain, recompute every hash, check the signed checkpoints.

Each record costs one SHA-256 of its payload and one of its header (``audit_proof.chain_walk``),
both computed here from what is stored; the rest is kept lean: raw DB-API cursors (a named,
server-side cursor on PostgreSQL) read in batches of ``BATCH`` rows, nine plain columns, no ORM
objects, no per-row generator. Large chains are cut into seq ranges ("units") verified by worker
processes: a record's hash depends only on its own row and its stored ``prev_hash``, so units are
independent once each also checks the link to the last record of the unit before it; the first
fault of a chain is the one with the lowest seq over all its units, as in a serial walk.

In front of that exact walk sits a columnar accelerator (``audit_verify_fast``: Arrow through ADBC,
hashing in polars) that only vouches for records; from the first record it cannot vouch for, the
exact walk takes over, so faults and their reasons are always the exact walk's.
"""

from __future__ import annotations

import datetime as dt
import gc
import itertools
import multiprocessing
import os
import time
from collections.abc import Generator, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, func, select

from collectguard.adapters.db.models import AuditRecord
from collectguard.adapters.db.models_audit import AuditCheckpoint
from collectguard.errors import IntegrityFault
from collectguard.services import audit_verify_fast
from collectguard.services.audit_proof import (
    GENESIS,
    Row,
    chain_walk,
    checkpoint_ok,
    fault,
    hash_time,
)

if TYPE_CHECKING:
    from collectguard.bootstrap import Container

MIN_UNIT = 100_000  # records per parallel unit at least: process start-up stays noise
BATCH = 20_000  # rows per fetch
FAST = True  # the columnar accelerator (audit_verify_fast) where its packages are installed
FAST_MIN = MIN_UNIT  # records at least: below that, starting its worker costs more than it saves
# Backends the accelerator runs on by default. PostgreSQL only: there it saves about a third of the
# wall time (1M records, 2 workers, idle machine: 2.85 s against 3.71 s). On SQLite it saved nothing
# once the machine was idle (2.73 s against 2.74 s: reading rows dominates either way) while it needs
# a second process, because ADBC links its own copy of SQLite (BENCHMARKS.md); the code stays, tested.
FAST_BACKENDS = frozenset({"postgresql"})
# SQLite: the payload as undecoded bytes and the time as stored; chain_walk formats it (cheaper than SQL).
_SQLITE = (
    "SELECT seq, time, tenant_id, actor, action, subject, CAST(payload AS BLOB), prev_hash, hash "
    "FROM audit_record WHERE chain = ? AND seq >= ? AND seq <= ? ORDER BY seq"
)
# PostgreSQL: the time in the hashed format. The payload digest is computed here, not by the server:
# the server's sha256() costs it three times what hashlib costs us.
_POSTGRES = (
    "SELECT seq, to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), tenant_id, "
    "actor, action, subject, payload, prev_hash, hash "
    "FROM audit_record WHERE chain = %s AND seq >= %s AND seq <= %s ORDER BY seq"
)
_LOWEST = -(2**62)


def _batches(engine: Engine, chain: str, lo: int, hi: int) -> Generator[list[Row], None, None]:
    raw = engine.raw_connection()
    try:
        if engine.dialect.name == "postgresql":
            cur = raw.driver_connection.cursor(name="cg_audit_verify")  # type: ignore[union-attr]
            cur.itersize = BATCH
            sql = _POSTGRES
        else:
            cur = raw.cursor()
            sql = _SQLITE
        try:
            cur.execute(sql, (chain, lo, hi))
            while batch := cur.fetchmany(BATCH):
                yield batch
        finally:
            cur.close()
    finally:
        raw.rollback()
        raw.close()


Result = tuple[int, "dict[str, Any] | None"]


def _verify_unit(engine: Engine, chain: str, lo: int, hi: int, cps: dict[int, str]) -> Result:
    """Verify seq lo..hi of ``chain`` through a fresh raw connection of ``engine``."""
    batches = _batches(engine, chain, _LOWEST if lo == 1 else lo - 1, hi)
    try:
        rows = itertools.chain.from_iterable(batches)
        return _verify_rows(rows, chain, lo, hi, cps, sqlite=engine.dialect.name != "postgresql")
    finally:
        batches.close()  # a walk that stops at a fault leaves the cursor open otherwise


def _verify_rows(rows: Iterator[Row], chain: str, lo: int, hi: int, cps: dict[int, str], *, sqlite: bool) -> Result:
    """Walk rows of seq lo-1..hi (lo == 1: from GENESIS); returns (records verified, first fault)."""
    prev = GENESIS
    if lo > 1:
        first = next(rows, None)
        # The previous unit reports a missing lo-1; here a missing one just breaks the link at lo.
        prev = first[8] if first is not None and first[0] == lo - 1 else "missing"
        if first is not None and first[0] != lo - 1:
            rows = itertools.chain((first,), rows)
    n, last, _h, bad = chain_walk(rows, chain=chain, start_seq=lo, prev_hash=prev, checkpoints=cps, stored_time=sqlite)
    if bad is None and last < hi:
        bad = fault(chain, last + 1, "missing: the record was deleted")
    return n, bad


_ENGINES: dict[str, Engine] = {}


def _worker(url: str, chain: str, lo: int, hi: int, cps: dict[int, str]) -> Result:
    # One engine per worker process, reused across its units; never the parent's (forked) pool.
    from collectguard.adapters.db.engine import make_engine

    engine = _ENGINES.get(url)
    if engine is None:
        engine = _ENGINES[url] = make_engine(url)
    gc.disable()  # a worker only walks rows: nothing to collect, and the collector costs a few per cent
    return _verify_unit(engine, chain, lo, hi, cps)


def _load_checkpoints(c: Container, trusted: set[str]) -> tuple[dict[str, dict[int, str]], list[dict[str, Any]], int]:
    cps: dict[str, dict[int, str]] = {}
    faults = []
    n = 0
    with c.uow(write=False) as s:
        for cp in s.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.chain, AuditCheckpoint.seq)):
            n += 1
            d = {
                "chain": cp.chain,
                "seq": cp.seq,
                "hash": cp.hash,
                "time": hash_time(cp.time),
                "key_id": cp.key_id,
                "public_key": cp.public_key,
                "signature": cp.signature,
            }
            if not checkpoint_ok(d):
                faults.append(fault(cp.chain, cp.seq, "checkpoint signature invalid"))
            elif cp.key_id not in trusted:
                faults.append(fault(cp.chain, cp.seq, f"checkpoint signed by unknown key {cp.key_id}"))
            cps.setdefault(cp.chain, {})[cp.seq] = cp.hash
    return cps, faults, n


def audit_verify_report(c: Container, *, chain: str | None = None, workers: int | None = None) -> dict[str, Any]:
    """Verify every chain (or one); never raises for a broken chain, reports it instead.

    The report: ``status`` intact|broken, ``faults`` (the first per chain: chain, seq, reason),
    counts, the chain heads, the worker processes used (1: this process), and the speed.
    """
    from collectguard.services.audit_signing import audit_signer

    started = time.perf_counter()
    signer = audit_signer(c.settings)
    cps, faults, n_cps = _load_checkpoints(c, {signer.key_id})
    r = AuditRecord
    with c.uow(write=False) as s:
        q = select(r.chain, func.max(r.seq), func.count()).group_by(r.chain).order_by(r.chain)
        stats = [(ch, int(mx), int(cnt)) for ch, mx, cnt in s.execute(q)]
    if chain is not None:
        stats = [st for st in stats if st[0] == chain]
        cps = {chain: cps.get(chain, {})}
    total = sum(mx for _, mx, _ in stats)
    workers = workers if workers is not None else os.cpu_count() or 1
    if total < MIN_UNIT:
        workers = 1  # not worth starting processes
    size = _unit_size(total, workers)
    units = [(ch, lo, min(lo + size - 1, mx)) for ch, mx, _ in stats for lo in range(1, mx + 1, size)]
    # A savepoint-bound test container cannot be reached from another connection: serial there.
    workers = 1 if c.connection is not None else max(1, min(workers, len(units)))
    results = _run_units(c, units, cps, workers)
    records = sum(n for n, _ in results)
    faults += [bad for _, bad in results if bad is not None]
    heads = {ch: mx for ch, mx, _ in stats}
    for ch, seqs in cps.items():
        beyond = [q for q in seqs if q > heads.get(ch, 0)]
        if beyond:  # a signed checkpoint names a record that is gone: the tail was cut off
            faults.append(
                fault(
                    ch,
                    heads.get(ch, 0) + 1,
                    f"missing: records after this were deleted (a checkpoint signs seq {min(beyond)})",
                )
            )
    first: dict[str, dict[str, Any]] = {}
    for f in sorted(faults, key=lambda f: (f["chain"], f["seq"])):
        first.setdefault(f["chain"], f)
    elapsed = time.perf_counter() - started
    return {
        "status": "broken" if first else "intact",
        "chains": len(stats),
        "records": records,
        "checkpoints": n_cps,
        "key_id": signer.key_id,
        "faults": list(first.values()),
        "heads": [{"chain": ch, "seq": mx} for ch, mx, _ in stats],
        "workers": workers,
        "seconds": round(elapsed, 3),
        "records_per_second": int(records / elapsed) if elapsed else records,
        "verified_at": c.clock().astimezone(dt.UTC).isoformat(timespec="seconds"),
    }


def _unit_size(total: int, workers: int) -> int:
    """About two units per worker (so a slow one does not hold the rest up), never tiny ones."""
    return max(MIN_UNIT, -(-total // (2 * workers)))


def _run_units(
    c: Container, units: list[tuple[str, int, int]], cps: dict[str, dict[int, str]], workers: int
) -> list[Result]:
    src = audit_verify_fast.source(c.engine) if FAST and c.connection is None else None
    src = src if src is not None and src[0] in FAST_BACKENDS else None
    if src is not None and sum(hi - lo + 1 for _, lo, hi in units) >= FAST_MIN:
        resumes = _accelerate(src, units, cps, workers)
        if resumes is not None:  # the exact walk from where the accelerator could not vouch (rare: a fault)
            return [
                (hi - lo + 1, None) if at is None else _resumed(c.engine, ch, lo, at, hi, cps.get(ch, {}))
                for (ch, lo, hi), at in zip(units, resumes, strict=True)
            ]
    if workers <= 1:
        if c.connection is not None:
            return [_verify_bound(c, ch, lo, hi, cps.get(ch, {})) for ch, lo, hi in units]
        return [_verify_unit(c.engine, ch, lo, hi, cps.get(ch, {})) for ch, lo, hi in units]
    url = c.engine.url.render_as_string(hide_password=False)
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method)) as pool:
        futs = [pool.submit(_worker, url, ch, lo, hi, cps.get(ch, {})) for ch, lo, hi in units]
        return [f.result() for f in futs]


def _accelerate(
    src: tuple[str, str], units: list[tuple[str, int, int]], cps: dict[str, dict[int, str]], workers: int
) -> list[int | None] | None:
    """``audit_verify_fast.unit_clean_until`` of every unit; None if the accelerator's workers failed.

    PostgreSQL: threads of this process (the work is in C++ and Rust with the GIL released).
    SQLite: threads of a fresh process (``python -m collectguard.services.audit_verify_fast``). ADBC
    links its own copy of SQLite, and two copies of SQLite in one process must not open the same
    file: a WAL database's new pages go unseen (we measured stale reads) and closing one copy's
    file drops the other's POSIX locks (sqlite.org/howtocorrupt.html, 2.2.1).
    """
    backend, dsn = src
    if backend == "postgresql":
        with ThreadPoolExecutor(workers) as threads:
            return list(
                threads.map(
                    lambda u: audit_verify_fast.unit_clean_until(backend, dsn, u[0], u[1], u[2], cps.get(u[0], {})),
                    units,
                )
            )
    proc = audit_verify_fast.spawn()
    try:
        audit_verify_fast.send(proc, backend, dsn, [(*u, cps.get(u[0], {})) for u in units], workers)
    except OSError:  # the worker died before reading its units
        proc.kill()
    got = audit_verify_fast.collect(proc)
    return got if got is not None and len(got) == len(units) else None


def _resumed(engine: Engine, chain: str, lo: int, at: int, hi: int, cps: dict[int, str]) -> Result:
    """Records lo..at-1 vouched for by the accelerator, then the exact walk of at..hi."""
    n, bad = _verify_unit(engine, chain, at, hi, cps)
    return at - lo + n, bad


def _verify_bound(c: Container, chain: str, lo: int, hi: int, cps: dict[int, str]) -> Result:
    """The same walk through the test container's connection (its uncommitted rows are visible)."""
    conn = c.connection
    assert conn is not None
    sqlite = conn.dialect.name != "postgresql"
    rows = conn.exec_driver_sql(_SQLITE if sqlite else _POSTGRES, (chain, _LOWEST if lo == 1 else lo - 1, hi))
    return _verify_rows((tuple(r) for r in rows), chain, lo, hi, cps, sqlite=sqlite)


def audit_verify(c: Container, *, chain: str | None = None, workers: int | None = None) -> dict[str, Any]:
    """Verify and return the report; raise ``IntegrityFault`` naming the first broken record."""
    report = audit_verify_report(c, chain=chain, workers=workers)
    if report["faults"]:
        f = report["faults"][0]
        msg = f"audit chain {f['chain']} broken at seq {f['seq']}: {f['reason']}"
        raise IntegrityFault(msg, detail=report)
    return report
