"""Benchmark ``audit verify``: records per second over N records; prints JSON.

    .venv/bin/python bench/audit_verify.py [--records 1000000] [--chains 1] [--workers N]
                                           [--backend sqlite|postgres|all] [--serial/--no-serial]
                                           [--accelerator/--no-accelerator] [--exact] [--stages]

SQLite always (a temporary file); PostgreSQL too when COLLECTGUARD_TEST_POSTGRES_URL is set (a
temporary database, dropped afterwards). Records get correct hashes from ``audit_proof.record_hash``
and are written with the driver's bulk paths (executemany, COPY): the fill is not what is measured.
One signed checkpoint every 1000 records; payloads of ~150 bytes with Chinese text like real ones.

For each backend and worker count the output gives the wall-clock rate and the CPU it cost:
``verifier`` is this process plus its worker processes, ``postgres`` the server processes serving
the bench database (read from /proc while the run lasts). On a shared machine the wall clock
depends on what else runs; ``records_per_cpu_second`` does not, much.

The accelerator runs on PostgreSQL only by default (``audit_verify.FAST_BACKENDS``);
``--sqlite-accelerator`` turns it on for SQLite too. ``--no-accelerator`` measures the exact walk
alone (``audit_verify.FAST = False``); ``--exact`` adds such a run after the accelerated ones.
``--stages`` adds the accelerator's cost split for one worker over the whole chain, measured in a
separate process (on SQLite the accelerator must never run in a process that has the file open
through ``sqlite3``): ``read`` (the rows into polars DataFrames through ADBC), ``sha256`` (the
payload digests and a record-hash-sized SHA-256 per row, alone), ``check`` (everything
``_first_bad`` does, the hashing included).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from collectguard.adapters.crypto import PiiCipher
from collectguard.adapters.db.engine import make_engine, normalise_url, session_factory, upgrade
from collectguard.bootstrap import Container
from collectguard.services import audit_verify as av
from collectguard.services import audit_verify_fast
from collectguard.services.audit import CHECKPOINT_EVERY
from collectguard.services.audit_proof import GENESIS, canonical_json, hash_time, payload_digest, record_hash
from collectguard.services.audit_signing import audit_signer
from collectguard.services.audit_verify import audit_verify_report
from collectguard.settings import Settings

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
_COLS = "chain, seq, time, tenant_id, actor, action, subject, payload, prev_hash, hash"
_CP_COLS = "chain, seq, hash, time, tenant_id, key_id, public_key, signature"


def records(settings: Settings, n: int, chains: int) -> Any:
    """Yield ("r", record row) and ("c", checkpoint row); chains interleaved like sharded appends.

    Times are strings, stored as SQLAlchemy stores them in SQLite ("YYYY-MM-DD HH:MM:SS.ffffff",
    UTC) and read by PostgreSQL with the "+00" appended in ``fill``.
    """
    signer = audit_signer(settings)
    prev = {ci: GENESIS for ci in range(chains)}
    days: dict[int, str] = {}
    msg = "您好，这里是某某消费金融，提醒您按时还款。"
    for i in range(n):
        ci, seq = i % chains, i // chains + 1
        chain = f"t1.s{ci:02d}" if chains > 1 else "t1"
        secs, ms = divmod(i * 37, 1000)
        day, secs = divmod(secs, 86400)
        if day not in days:
            days[day] = (T0 + dt.timedelta(days=day)).date().isoformat()
        clock = f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}.{ms * 1000:06d}"
        # canonical_json of {"borrower_id", "channel", "verdict", "message", "attempt"}, written out (checked below)
        payload = f'{{"attempt":{seq},"borrower_id":{i % 5000},"channel":"call","message":"{msg}","verdict":"allow"}}'
        if i == 0:
            assert payload == canonical_json(
                {"borrower_id": 0, "channel": "call", "verdict": "allow", "message": msg, "attempt": 1}
            )
            assert f"{days[0]}T{clock}Z" == hash_time(T0)
        subject = f"contact_attempt:{i + 1}"
        h = record_hash(
            prev[ci],
            chain=chain,
            seq=seq,
            time=f"{days[day]}T{clock}Z",
            tenant_id=1,
            actor="user:bench",
            action="contact_attempt.create",
            subject=subject,
            payload_sha256=payload_digest(payload),
        )
        t = f"{days[day]} {clock}"
        yield "r", (chain, seq, t, 1, "user:bench", "contact_attempt.create", subject, payload, prev[ci], h)
        prev[ci] = h
        if seq % CHECKPOINT_EVERY == 0:
            at = dt.datetime.fromisoformat(t).replace(tzinfo=dt.UTC)
            cp = signer.checkpoint(chain=chain, seq=seq, hash=h, now=at, tenant_id=1)
            yield "c", tuple(getattr(cp, k) for k in _CP_COLS.split(", "))


def _sqlite_time(row: tuple[Any, ...], i: int) -> tuple[Any, ...]:
    # As SQLAlchemy stores a DateTime in SQLite: naive UTC text with microseconds.
    return (*row[:i], row[i].strftime("%Y-%m-%d %H:%M:%S.%f"), *row[i + 1 :])


def _utc(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return (*row[:2], row[2] + "+00", *row[3:])


def fill(url: str, settings: Settings, n: int, chains: int) -> None:
    batch: list[tuple[Any, ...]] = []
    cps: list[tuple[Any, ...]] = []
    if url.startswith("sqlite"):
        conn = sqlite3.connect(make_url(url).database or "")
        ins = f"INSERT INTO audit_record ({_COLS}) VALUES ({', '.join('?' * 10)})"
        for kind, row in records(settings, n, chains):
            if kind == "c":
                cps.append(_sqlite_time(row, 3))
                continue
            batch.append(row)
            if len(batch) >= 50_000:
                conn.executemany(ins, batch)
                batch = []
        conn.executemany(ins, batch)
        conn.executemany(f"INSERT INTO audit_checkpoint ({_CP_COLS}) VALUES ({', '.join('?' * 8)})", cps)
        conn.commit()
        conn.close()
        return
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as pg:
        with pg.cursor().copy(f"COPY audit_record ({_COLS}) FROM STDIN") as copy:
            for kind, row in records(settings, n, chains):
                if kind == "c":
                    cps.append(row)
                else:
                    copy.write_row(_utc(row))
        with pg.cursor().copy(f"COPY audit_checkpoint ({_CP_COLS}) FROM STDIN") as copy:
            for row in cps:
                copy.write_row(row)
        pg.execute("ANALYZE audit_record")


class ServerCpu:
    """CPU seconds of the PostgreSQL processes serving one database while a run lasts (/proc)."""

    def __init__(self, url: str | None) -> None:
        self.url, self.seen, self.base = url, {}, {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def _cpu(pid: int) -> float | None:
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def _poll(self, conn: Any, me: int) -> dict[int, float]:
        q = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> %s"
        out = {}
        for (pid,) in conn.execute(q, (me,)).fetchall():
            cpu = self._cpu(pid)
            if cpu is not None:
                out[pid] = cpu
        return out

    def __enter__(self) -> ServerCpu:
        if self.url is None:
            return self
        import psycopg

        conn = psycopg.connect(self.url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
        me = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        self.base = self._poll(conn, me)

        def loop() -> None:
            while not self._stop.wait(0.05):
                self.seen.update(self._poll(conn, me))
            conn.close()

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def seconds(self) -> float | None:
        if self.url is None or not self.seen:
            return None
        return sum(cpu - self.base.get(pid, 0.0) for pid, cpu in self.seen.items())


def measure(c: Container, workers: int, pg_url: str | None) -> dict[str, Any]:
    own, kids = time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    with ServerCpu(pg_url) as server:
        report = audit_verify_report(c, workers=workers)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    verifier = time.process_time() - own + (after.ru_utime - kids.ru_utime) + (after.ru_stime - kids.ru_stime)
    assert report["status"] == "intact", report["faults"]
    cpu = {"verifier": round(verifier, 2)}
    if server.seconds is not None:
        cpu["postgres"] = round(server.seconds, 2)
    total = sum(cpu.values())
    return {
        "workers": workers,
        "accelerator": bool(av.FAST and (src := audit_verify_fast.source(c.engine)) and src[0] in av.FAST_BACKENDS),
        "records": report["records"],
        "seconds": report["seconds"],
        "records_per_second": report["records_per_second"],
        "cpu_seconds": cpu,
        "records_per_cpu_second": int(report["records"] / total) if total else None,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def run(url: str, backend: str, args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings(database_url=url, environment="test")
    engine = make_engine(url)
    upgrade(engine)
    t = time.perf_counter()
    fill(normalise_url(url), settings, args.records, args.chains)
    fill_s = time.perf_counter() - t
    c = Container(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        cipher=PiiCipher(settings.pii_key_bytes()),
    )
    pg_url = normalise_url(url) if backend == "postgres" else None
    audit_verify_report(c, workers=1, chain="none")  # warm up imports and the signer outside the timing
    av.FAST = args.accelerator
    if args.sqlite_accelerator:
        av.FAST_BACKENDS = frozenset({"sqlite", "postgresql"})
    runs = [measure(c, 1, pg_url)] if args.serial else []
    workers = args.workers or os.cpu_count() or 1
    if workers > 1 or not args.serial:
        runs.append(measure(c, workers, pg_url))
    if args.exact and args.accelerator:
        av.FAST = False
        runs.append(measure(c, workers, pg_url))
        av.FAST = True
    out = {
        "backend": backend,
        "records": args.records,
        "chains": args.chains,
        "fill_seconds": round(fill_s, 1),
        "runs": runs,
    }
    src = audit_verify_fast.source(engine)
    if args.stages and src is not None:
        chain = "t1" if args.chains == 1 else "t1.s00"
        cmd = [sys.executable, __file__, "--stages-of", src[0], src[1], chain, str(args.records // args.chains)]
        out["stages"] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    engine.dispose()
    return out


def stages(backend: str, dsn: str, chain: str, n: int) -> dict[str, Any]:
    """CPU and wall seconds of the accelerator's stages over seq 1..n of one chain, in this process."""
    import polars as pl
    import polars_hash  # noqa: F401 - registers the .chash namespace

    def clock() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    out: dict[str, Any] = {"polars_threads": pl.thread_pool_size(), "load_average_1m": round(os.getloadavg()[0], 2)}
    t = clock()
    dfs = list(audit_verify_fast._chunks(backend, dsn, chain, 1, n))
    t, out["read"] = clock(), _since(t)
    c = pl.col
    body = pl.concat_str([c("prev_hash"), c("hash"), c("hash"), c("actor"), c("action"), c("subject"), c("time")])
    for df in dfs:
        df.select(c("payload").chash.sha2_256(), body.chash.sha2_256().alias("h"))
    t, out["sha256"] = clock(), _since(t)
    expected, prev = 1, GENESIS
    for df in dfs:
        assert audit_verify_fast._first_bad(df, chain, expected, prev, {}, sqlite=backend == "sqlite") is None
        expected, prev = expected + df.height, df["hash"][-1]
    out["check"] = _since(t)
    return out


def _since(t: tuple[float, float]) -> dict[str, float]:
    return {"wall": round(time.perf_counter() - t[0], 2), "cpu": round(time.process_time() - t[1], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--chains", type=int, default=1)
    ap.add_argument("--workers", type=int, default=None, help="parallel run's workers (default: one per CPU)")
    ap.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="all")
    ap.add_argument("--serial", action=argparse.BooleanOptionalAction, default=True, help="also a 1-worker run")
    ap.add_argument(
        "--accelerator",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the columnar accelerator (audit_verify_fast); --no-accelerator: the exact walk alone",
    )
    ap.add_argument(
        "--sqlite-accelerator", action="store_true", help="also accelerate SQLite (off by default: no gain there)"
    )
    ap.add_argument("--exact", action="store_true", help="also a run of the exact walk alone")
    ap.add_argument("--stages", action="store_true", help="also the accelerator's per-stage cost split")
    ap.add_argument("--stages-of", nargs=4, help=argparse.SUPPRESS)  # internal: the --stages subprocess
    args = ap.parse_args()
    if args.stages_of:
        backend, dsn, chain, n = args.stages_of
        json.dump(stages(backend, dsn, chain, int(n)), sys.stdout)
        return
    results = []
    if args.backend in ("sqlite", "all"):
        with tempfile.TemporaryDirectory() as tmp:
            results.append(run(f"sqlite:///{Path(tmp) / 'bench.db'}", "sqlite", args))
    pg = os.environ.get("COLLECTGUARD_TEST_POSTGRES_URL")
    if args.backend in ("postgres", "all") and pg:
        admin = create_engine(normalise_url(pg), isolation_level="AUTOCOMMIT")
        name = f"cg_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = make_url(normalise_url(pg)).set(database=name).render_as_string(hide_password=False)
            results.append(run(url, "postgres", args))
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    out = {"benchmark": "audit_verify", "cpus": os.cpu_count(), "results": results}
    json.dump(out, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
