"""The columnar accelerator of ``audit verify``: a unit's rows checked without touching them in Python.

A unit (seq lo..hi of one chain) is read into Arrow by the ADBC drivers (C/C++: SQLite's own
stepping, PostgreSQL's binary COPY) and checked in polars in chunks of ``CHUNK`` rows: the payload
digests (SHA-256 by the ``polars-hash`` plugin, or the digest kept in a redaction marker), the
header bodies (``concat_str``), the record hashes, the stored hashes, the links (a shifted column),
seq continuity and the signed checkpoints.

It only accelerates: it never names a fault. ``unit_clean_until`` returns the first seq it could
not vouch for (None: the whole unit is intact) and the exact Python walk
(``audit_proof.chain_walk``) takes over from there, so the fault reported and its reason are
always the exact walk's. A row is vouched for only when the columnar result equals the stored
hash and the columnar rendering is certainly byte-identical to ``chain_walk``'s; a row whose text
would need JSON escaping (control characters, ``"``, ``\\``), a time in an unexpected shape, or
(SQLite) a value of an unexpected storage class is not rendered in polars at all: escaped rows are
recomputed one by one with ``chain_walk`` itself, the rest stop the accelerator. Any failure of
the accelerator (a driver missing, an odd URL, a type it did not expect) hands the unit to the
exact walk as well.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from importlib.util import find_spec
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any

from collectguard.services.audit_proof import GENESIS, chain_walk

if TYPE_CHECKING:
    import polars as pl
    from sqlalchemy import Engine

CHUNK = 131_072  # rows per polars pass: ≈ 150 MB at the sizes audit records have
_HEAD = b'{"payload_sha256":"'
_TAIL = b'","redacted":true}'
_MARKER_LEN = len(_HEAD) + 64 + len(_TAIL)
_SAFE_CHAIN = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")  # inlined into SQL (COPY takes no parameters)
_ESCAPED = ['"', "\\", *map(chr, range(32))]  # what json's encode_basestring rewrites: left to chain_walk
_SQLITE_TIME = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$"
_COLS = ["seq", "time", "tenant_id", "actor", "action", "subject", "payload", "prev_hash", "hash"]

# The same rows as the exact walk's queries (audit_verify._SQLITE/_POSTGRES). SQLite keeps a value of
# another storage class than the schema promises, and ADBC turns a column holding several into text
# or binary (within a batch; across batches it fails), so the dtype check in ``_first_bad`` catches
# most. What it cannot see is a number where text belongs, and only ``time`` can hold one (DATETIME
# has NUMERIC affinity; VARCHAR and TEXT have TEXT affinity, which stores numbers as text): ``typed``.
_SQLITE = (
    "SELECT seq, time, tenant_id, actor, action, subject, CAST(payload AS BLOB) AS payload, prev_hash, hash, "
    "typeof(time) = 'text' AS typed "
    "FROM audit_record WHERE chain = ? AND seq >= ? AND seq <= ? ORDER BY seq"
)
_POSTGRES = (
    "SELECT seq, to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS time, tenant_id, "
    "actor, action, subject, payload, prev_hash, hash "
    "FROM audit_record WHERE chain = '{chain}' AND seq >= {lo} AND seq <= {hi} ORDER BY seq"
)
_LOWEST = -(2**62)
_TEXT = ("time", "actor", "action", "subject", "prev_hash", "hash")


def source(engine: Engine) -> tuple[str, str] | None:
    """(backend, DSN) for the ADBC drivers, or None where the accelerator cannot be used.

    None when a package is missing (then ``audit verify`` is the exact walk alone, as before) or
    the database is one only this process can reach (in-memory SQLite, a URL with options).
    Checked without importing the packages: on SQLite they are only ever imported by a fresh
    worker process (see ``audit_verify._accelerate``).
    """
    backend = engine.dialect.name
    driver = {"postgresql": "adbc_driver_postgresql", "sqlite": "adbc_driver_sqlite"}.get(backend)
    if driver is None or any(find_spec(m) is None for m in ("polars", "polars_hash", "pyarrow", driver)):
        return None
    url = engine.url
    if backend == "postgresql":
        return backend, url.set(drivername="postgresql").render_as_string(hide_password=False)
    if not url.database or url.database == ":memory:" or url.query:
        return None
    return backend, url.database


def unit_clean_until(backend: str, dsn: str, chain: str, lo: int, hi: int, cps: Mapping[int, str]) -> int | None:
    """Check seq lo..hi of ``chain``; None when all of it is intact, else the seq the exact walk resumes at.

    Records lo..(returned seq - 1) are vouched for: consecutive, linked, hashes and checkpoints right.
    SQLite: only in a process that has not opened the database through Python's ``sqlite3`` (a
    worker started by ``spawn``); ADBC's copy of SQLite would lose that process's locks and WAL.
    """
    try:
        return _clean_until(backend, dsn, chain, lo, hi, cps)
    except Exception:  # an accelerator's failure is never a verdict: the exact walk decides
        return lo


def spawn() -> subprocess.Popen[bytes]:
    """Start a worker process for SQLite units (``send`` hands it them; it checks them in threads)."""
    import collectguard

    root = os.path.dirname(os.path.dirname(os.path.abspath(collectguard.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.Popen(  # noqa: S603 - this interpreter running this module, no shell, no outside input
        [sys.executable, "-m", __name__],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )


def send(proc: subprocess.Popen[bytes], backend: str, dsn: str, units: list[tuple[Any, ...]], threads: int) -> None:
    """Hand a started worker its units, (chain, lo, hi, checkpoints) each, and how many threads to use."""
    jobs = [[ch, lo, hi, sorted(cps.items())] for ch, lo, hi, cps in units]
    assert proc.stdin is not None
    with proc.stdin:
        proc.stdin.write(json.dumps({"backend": backend, "dsn": dsn, "units": jobs, "threads": threads}).encode())


def collect(proc: subprocess.Popen[bytes]) -> list[int | None] | None:
    """A worker's answers in its units' order; None when it failed (then the exact walk does it all)."""
    assert proc.stdout is not None
    with proc.stdout:
        out = proc.stdout.read()
    if proc.wait() != 0:
        return None
    try:
        got = json.loads(out)
    except ValueError:
        return None
    return got if isinstance(got, list) else None


def _main() -> None:
    from concurrent.futures import ThreadPoolExecutor

    job = json.load(sys.stdin)

    def one(unit: list[Any]) -> int | None:
        ch, lo, hi, cps = unit
        return unit_clean_until(job["backend"], job["dsn"], ch, lo, hi, dict(cps))

    # One process, one thread per worker: the work is in C and Rust with the GIL released, and the
    # imports (≈ 0.5 CPU-s) are paid once.
    with ThreadPoolExecutor(max(1, int(job["threads"]))) as threads:
        json.dump(list(threads.map(one, job["units"])), sys.stdout)


def _clean_until(backend: str, dsn: str, chain: str, lo: int, hi: int, cps: Mapping[int, str]) -> int | None:
    sqlite = backend != "postgresql"
    expected, prev = lo, GENESIS
    first = True
    for df in _chunks(backend, dsn, chain, _LOWEST if lo == 1 else lo - 1, hi):
        if first and lo > 1:  # the previous unit's last record: only its hash is needed
            if df.height == 0 or df["seq"][0] != lo - 1:
                return lo  # the exact walk reports the break at lo
            prev = df["hash"][0]
            df = df.slice(1)
        first = False
        bad = _first_bad(df, chain, expected, prev, cps, sqlite=sqlite)
        if bad is not None:
            return expected + bad
        if df.height:
            expected += df.height
            prev = df["hash"][-1]
    return None if expected > hi else expected


def _first_bad(
    df: pl.DataFrame, chain: str, expected: int, prev: str, cps: Mapping[int, str], *, sqlite: bool
) -> int | None:
    """Index of the first row of ``df`` not vouched for (rows continue seq ``expected`` after hash ``prev``)."""
    import polars as pl
    import polars_hash as plh

    if df.height == 0:
        return None
    types = df.schema
    if not (
        types["seq"] == pl.Int64
        and types["tenant_id"] in (pl.Int64, pl.Int32, pl.Null)
        and all(types[k] == pl.String for k in _TEXT)
        and types["payload"] == (pl.Binary if sqlite else pl.String)
    ):
        return 0  # a value of another type in this chunk: the exact walk judges it
    c = pl.col
    payload = c("payload") if sqlite else c("payload").cast(pl.Binary)
    text = c("payload").cast(pl.String, strict=False) if sqlite else c("payload")
    marker = (
        (payload.bin.size() == _MARKER_LEN)
        & payload.bin.starts_with(_HEAD)
        & payload.bin.ends_with(_TAIL)
        & text.str.slice(len(_HEAD), 64).str.contains("^[0-9a-f]{64}$").fill_null(False)
    )
    digest = plh.col("payload").chash.sha2_256()
    if df.select((payload.bin.size() == _MARKER_LEN).any()).item():  # redacted records: their kept digest
        digest = pl.when(marker).then(text.str.slice(len(_HEAD), 64)).otherwise(digest)
    if sqlite:
        tm = pl.concat_str([c("time").str.slice(0, 10), pl.lit("T"), c("time").str.slice(11), pl.lit("Z")])
        odd_time = ~c("time").str.contains(_SQLITE_TIME)
    else:
        tm, odd_time = c("time"), pl.lit(False)
    body = pl.concat_str(
        [
            c("prev_hash"),
            pl.lit('{"action":"'),
            c("action"),
            pl.lit('","actor":"'),
            c("actor"),
            pl.lit('","chain":' + encode_basestring(chain) + ',"payload_sha256":"', dtype=pl.String),
            c("digest"),
            pl.lit('","seq":'),
            c("seq").cast(pl.String),
            pl.lit(',"subject":"'),
            c("subject"),
            pl.lit('","tenant":'),
            c("tenant_id").cast(pl.String).fill_null("null"),
            pl.lit(',"time":"'),
            c("tm"),
            pl.lit('"}'),
        ]
    )
    n = df.height
    prev_hash = pl.concat([pl.Series([prev], dtype=pl.String), df["hash"].slice(0, n - 1)])
    seqs = pl.int_range(expected, expected + n, eager=True, dtype=pl.Int64)
    cp_seqs = [s for s in cps if expected <= s < expected + n]
    cp = pl.Series([cps[s] for s in cp_seqs], dtype=pl.String)
    nulls = pl.any_horizontal(c(k).is_null() for k in _COLS if k != "tenant_id")
    escaped = odd_time | pl.any_horizontal(c(k).str.contains_any(_ESCAPED) for k in ("actor", "action", "subject"))
    typed = c("typed") == 1 if sqlite else pl.lit(True)
    out = (
        df.lazy()
        .with_columns(
            digest=digest,
            tm=tm,
            linked=c("prev_hash") == prev_hash,
            in_seq=c("seq") == seqs,
            bad_cp=c("seq").is_in(cp_seqs) & (c("hash") != c("seq").replace_strict(cp_seqs, cp, default=None)),
        )
        .with_columns(body=body)
        .select(
            good=(plh.col("body").chash.sha2_256() == c("hash")).fill_null(False),
            escaped=escaped.fill_null(False),
            sound=(typed & ~nulls & c("linked") & c("in_seq") & ~c("bad_cp").fill_null(False)).fill_null(False),
        )
        .collect()
    )
    sound = out["sound"]
    limit = n if sound.all() else int(sound.arg_min() or 0)  # the first row the exact walk must see itself
    # A row whose text needs escaping is judged by chain_walk itself, whatever polars made of it.
    escaped_rows = out.select(pl.arg_where(pl.col("escaped"))).to_series()
    bad = ~(out["good"] | out["escaped"])
    if bad.any():
        limit = min(limit, int(bad.arg_max() or 0))
    for i in escaped_rows.to_list():
        if i >= limit:
            break
        if not _row_ok(df.row(i), chain, sqlite=sqlite):
            return int(i)
    return None if limit >= n else limit


def _row_ok(row: tuple[Any, ...], chain: str, *, sqlite: bool) -> bool:
    """One record's own hash, by the exact walk (its link is checked by the caller)."""
    *fields, _typed = row if sqlite else (*row, None)
    seq, prev = fields[0], fields[7]
    return chain_walk([tuple(fields)], chain=chain, start_seq=seq, prev_hash=prev, stored_time=sqlite)[3] is None


def _chunks(backend: str, dsn: str, chain: str, lo: int, hi: int) -> Iterator[pl.DataFrame]:
    """The rows of seq lo..hi in seq order, as DataFrames of about ``CHUNK`` rows."""
    import polars as pl
    import pyarrow as pa

    if backend == "postgresql":
        import adbc_driver_postgresql.dbapi as adbc

        if not _SAFE_CHAIN.fullmatch(chain):
            raise ValueError("chain name not inlinable")
        sql, params = _POSTGRES.format(chain=chain, lo=int(lo), hi=int(hi)), None
    else:
        import adbc_driver_sqlite.dbapi as adbc

        sql, params = _SQLITE, (chain, lo, hi)
    with adbc.connect(dsn) as conn, conn.cursor() as cur:
        if backend != "postgresql":
            cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(CHUNK)})
        cur.execute(sql, params)
        reader = cur.fetch_record_batch()
        pending: list[pa.RecordBatch] = []
        rows = 0
        for batch in reader:
            pending.append(batch)
            rows += batch.num_rows
            if rows >= CHUNK:
                yield pl.DataFrame(pa.Table.from_batches(pending))
                pending, rows = [], 0
        if pending or rows == 0:
            yield pl.DataFrame(pa.Table.from_batches(pending, schema=reader.schema))


if __name__ == "__main__":
    _main()
