"""Benchmark the daily run on a generated portfolio, beside a bare DuckDB query; prints JSON.

    .venv/bin/python bench/daily.py --loans 1000000 --backend sqlite
    .venv/bin/python bench/daily.py --loans 10000000 --backend postgres   # COLLECTGUARD_TEST_POSTGRES_URL
    .venv/bin/python bench/daily.py --loans 1000000 --backend duckdb      # the DuckDB baseline only
    .venv/bin/python bench/daily.py --loans 1000000 --sqlite-file /tmp/cg-1m.db --no-duckdb
        # generates /tmp/cg-1m.db once (kept), then every later call measures a fresh copy of it
    .venv/bin/python bench/daily.py --loans 1000000 --backend postgres --pg-template cg_bench_1m --no-duckdb
        # the same with a kept PostgreSQL database used as a template (drop it when done)

The portfolio is generated inside the database with set-based SQL, not through the ORM; on
PostgreSQL the secondary indexes are dropped during the load and rebuilt after it, then VACUUM
ANALYZE (the steady state of a database whose autovacuum has run). Generation is not measured.

Measured, each in a fresh child process: the first daily run (every loan computed, every case
opened), the next day's run (the steady state), and DuckDB in memory computing the same bucket
counts over the same data (generated in DuckDB by the same SQL; the bench checks the counts are
equal). Peak memory is the child's ``ru_maxrss``. A temporary PostgreSQL database is dropped after.

The portfolio is identical on SQLite, PostgreSQL and DuckDB: every value is integer arithmetic
on the loan id, so the three engines hold exactly the same data: loan ``i`` has
``h = (i·1103515245 + 12345) mod 2³¹`` and from it
- ``age`` days since disbursement (0–399; every 1000th loan is disbursed 5 days *after* the
  as-of date and must be left out of the run), principal 1,000–9,999 yuan,
- 6 monthly installments (due every 30 days; 2 % interest a month; a 5-yuan fee on the first),
- behaviour ``b = (h/13) mod 20``: 0–15 pay every installment due (one lump payment), 16
  overpays the whole loan, 17 pays a few installments and half of the next, 18 pays a few, 19
  pays a few and then everything three days *after* the as-of date (which must not count).
Two loans per borrower. Money in cents.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any


# ---------------------------------------------------------------- the portfolio as SQL
@dataclass(frozen=True)
class Dialect:
    name: str  # sqlite | postgresql | duckdb

    def idiv(self, a: str, b: str) -> str:
        return f"(({a}) // ({b}))" if self.name == "duckdb" else f"(({a}) / ({b}))"

    def least(self, a: str, b: str) -> str:
        return f"min({a}, {b})" if self.name == "sqlite" else f"least({a}, {b})"

    def greatest(self, a: str, b: str) -> str:
        return f"max({a}, {b})" if self.name == "sqlite" else f"greatest({a}, {b})"

    def date_plus(self, d: str, days: str) -> str:
        """``d`` (an ISO date literal) plus ``days`` (an integer expression)."""
        if self.name == "sqlite":
            return f"date(julianday('{d}') + ({days}))"
        return f"(DATE '{d}' + CAST({days} AS INTEGER))"

    def ids(self, lo: int, hi: int) -> str:
        """A relation ``ids(i)`` of the 64-bit integers lo..hi."""
        if self.name == "sqlite":
            return (
                f"(WITH RECURSIVE r(i) AS (SELECT {lo} UNION ALL SELECT i + 1 FROM r WHERE i < {hi}) SELECT i FROM r)"
            )
        return f"(SELECT CAST(g AS BIGINT) AS i FROM generate_series({lo}, {hi}) AS t(g))"


def loan_facts(dl: Dialect, as_of: str, lo: int, hi: int) -> str:
    """One row per loan id in [lo, hi] with every derived number the tables need."""
    h = "((ids.i * 1103515245 + 12345) % 2147483648)"
    age = f"(CASE WHEN {h} % 1000 = 999 THEN -5 ELSE {h} % 400 END)"
    principal = f"(100000 + ({dl.idiv(h, '7')} % 9000) * 100)"
    return f"""
SELECT ids.i AS id, {h} AS h, {age} AS age, {principal} AS principal,
       {dl.idiv(principal, "6")} AS p6, {dl.idiv(principal, "50")} AS interest,
       {dl.idiv(h, "13")} % 20 AS b, {dl.idiv(h, "1009")} % 7 AS r
FROM {dl.ids(lo, hi)} ids"""


def loans_select(dl: Dialect, as_of: str, lo: int, hi: int, created: str) -> str:
    return f"""
SELECT f.id, 1, 'L' || f.id, {dl.idiv("f.id + 1", "2")}, 'bench', 'small_loan_company', f.principal, 'CNY',
       240000, 0, {dl.date_plus(as_of, "-f.age")}, 34500, 0, 'M0', 'valid', {created}
FROM ({loan_facts(dl, as_of, lo, hi)}) f"""


LOAN_COLUMNS = (
    "id, tenant_id, ext_id, borrower_id, product, lender_type, principal, currency, annual_rate, "
    "upfront_fees, disbursed_on, lpr_at_signing, dpd, bucket, debt_status, created_at"
)


def installments_select(dl: Dialect, as_of: str, lo: int, hi: int) -> str:
    return f"""
SELECT f.id, k.k, {dl.date_plus(as_of, "-f.age + 30 * k.k")},
       f.p6 + CASE WHEN k.k = 6 THEN f.principal - 6 * f.p6 ELSE 0 END, f.interest,
       CASE WHEN k.k = 1 THEN 500 ELSE 0 END
FROM ({loan_facts(dl, as_of, lo, hi)}) f
CROSS JOIN (SELECT 1 AS k UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4
            UNION ALL SELECT 5 UNION ALL SELECT 6) k"""


INSTALLMENT_COLUMNS = "loan_id, seq, due_date, principal_due, interest_due, fee_due"


def _paid_m(dl: Dialect) -> tuple[str, str, str]:
    due_count = f"(CASE WHEN f.age <= 0 THEN 0 ELSE {dl.least('6', dl.idiv('f.age - 1', '30'))} END)"
    m = f"(CASE WHEN f.b < 16 THEN {due_count} ELSE {dl.least(due_count, 'f.r')} END)"
    sum_m = (
        f"({m} * (f.p6 + f.interest) + CASE WHEN {m} >= 1 THEN 500 ELSE 0 END"
        f" + CASE WHEN {m} = 6 THEN f.principal - 6 * f.p6 ELSE 0 END)"
    )
    total = "(f.principal + 6 * f.interest + 500)"
    return m, sum_m, total


def payments_select(dl: Dialect, as_of: str, lo: int, hi: int, created: str) -> str:
    """Payment 1 (lump, partial or overpayment) and payment 2 (after the as-of date) per loan."""
    m, sum_m, total = _paid_m(dl)
    amount = (
        f"(CASE WHEN f.b = 16 THEN {total} + 1000 "
        f"WHEN f.b = 17 THEN {sum_m} + {dl.idiv('f.p6 + f.interest', '2')} ELSE {sum_m} END)"
    )
    day = f"(CASE WHEN f.b = 16 THEN 10 ELSE 30 * {dl.greatest(m, '1')} - 2 END)"
    return f"""
SELECT x.loan_id, x.paid_on, x.amount, {created} FROM (
  SELECT f.id AS loan_id, {dl.date_plus(as_of, f"-f.age + {day}")} AS paid_on, {amount} AS amount
  FROM ({loan_facts(dl, as_of, lo, hi)}) f
  UNION ALL
  SELECT f.id, {dl.date_plus(as_of, "3")}, {total}
  FROM ({loan_facts(dl, as_of, lo, hi)}) f WHERE f.b = 19
) x WHERE x.amount > 0"""


PAYMENT_COLUMNS = "loan_id, paid_on, amount, created_at"


def borrowers_select(dl: Dialect, lo: int, hi: int, created: str) -> str:
    blob = "X'00'" if dl.name == "sqlite" else "'\\x00'::bytea"
    return f"""
SELECT ids.i, 1, 'B' || ids.i, {blob}, {blob}, 'h' || ids.i, 'CN', 'Asia/Shanghai', 'zh-CN', 'active',
       {created}
FROM {dl.ids(lo, hi)} ids"""


BORROWER_COLUMNS = (
    "id, tenant_id, ext_id, name_enc, phone_enc, phone_hmac, jurisdiction, timezone, language, status, created_at"
)

# The bucket counts, computed the way DESIGN §13 defines them, for the DuckDB baseline.
DUCKDB_BUCKETS = """
WITH paid AS (SELECT loan_id, SUM(amount) AS paid FROM payment WHERE paid_on <= DATE '{d}' GROUP BY loan_id),
w AS (SELECT loan_id, due_date, principal_due + interest_due + fee_due AS due,
             SUM(principal_due + interest_due + fee_due) OVER (PARTITION BY loan_id ORDER BY due_date, seq
                                                                ROWS UNBOUNDED PRECEDING) AS cum
      FROM installment),
a AS (SELECT w.loan_id, MAX(cum) AS total_due,
             MIN(CASE WHEN cum > COALESCE(p.paid, 0) AND cum - due <= COALESCE(p.paid, 0)
                      THEN due_date END) AS oldest
      FROM w LEFT JOIN paid p USING (loan_id) GROUP BY w.loan_id),
s AS (SELECT CASE WHEN COALESCE(a.total_due, 0) <= COALESCE(p.paid, 0) THEN -1
                  WHEN a.oldest < DATE '{d}' THEN DATE '{d}' - a.oldest ELSE 0 END AS dpd
      FROM loan l LEFT JOIN a ON a.loan_id = l.id LEFT JOIN paid p ON p.loan_id = l.id
      WHERE l.disbursed_on <= DATE '{d}')
SELECT CASE WHEN dpd < 0 THEN 'closed' WHEN dpd = 0 THEN 'M0' WHEN dpd <= 30 THEN 'M1'
            WHEN dpd <= 60 THEN 'M2'
            WHEN dpd <= 90 THEN 'M3' WHEN dpd <= 120 THEN 'M4' WHEN dpd <= 150 THEN 'M5'
            WHEN dpd <= 180 THEN 'M6' ELSE 'M6+' END AS bucket, COUNT(*)
FROM s GROUP BY 1
"""


AS_OF = dt.date(2026, 4, 7)
STEP = 1_000_000


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _statements(dl: Dialect, n: int, created: str) -> list[tuple[str, str]]:
    out = []
    for lo in range(1, n + 1, STEP):
        hi = min(n, lo + STEP - 1)
        d = AS_OF.isoformat()
        out += [
            (
                "borrower",
                f"INSERT INTO borrower ({BORROWER_COLUMNS}) "
                f"{borrowers_select(dl, (lo + 1) // 2, (hi + 1) // 2, created)}",
            ),
            ("loan", f"INSERT INTO loan ({LOAN_COLUMNS}) {loans_select(dl, d, lo, hi, created)}"),
            (
                "installment",
                f"INSERT INTO installment ({INSTALLMENT_COLUMNS}) {installments_select(dl, d, lo, hi)}",
            ),
            ("payment", f"INSERT INTO payment ({PAYMENT_COLUMNS}) {payments_select(dl, d, lo, hi, created)}"),
        ]
    return out


def generate(url: str, n: int) -> float:
    """Create the schema and the portfolio; returns the seconds it took."""
    from sqlalchemy import text

    from collectguard.adapters.db.engine import make_engine, upgrade

    engine = make_engine(url)
    upgrade(engine)
    dl = Dialect(engine.dialect.name)
    t = time.perf_counter()
    pg = dl.name == "postgresql"
    created = "TIMESTAMPTZ '2026-01-01 00:00:00+00'" if pg else "'2026-01-01 00:00:00.000000'"
    with engine.begin() as conn:
        indexes = []
        if pg:
            conn.exec_driver_sql("SET session_replication_role = replica")  # no FK triggers during the load
            indexes = _drop_indexes(conn)
        conn.execute(
            text(
                f"INSERT INTO tenant (id, code, name, kind, licensed, created_at) "
                f"VALUES (1, 'bench', '基准金融', 'lender', true, {created})"
            )
        )
        for _table, stmt in _statements(dl, n, created):
            conn.execute(text(stmt))
        for ddl in indexes:
            conn.exec_driver_sql(ddl)
        if pg:
            conn.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence(t, 'id'), (SELECT MAX(id) FROM loan)) "
                "FROM (VALUES ('loan'), ('borrower')) v(t)"
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE" if pg else "ANALYZE")
    engine.dispose()
    return round(time.perf_counter() - t, 1)


def _drop_indexes(conn: Any) -> list[str]:
    """Drop the non-primary-key indexes and unique constraints of the big tables; returns the DDL back."""
    tables = ("borrower", "loan", "installment", "payment")
    back = []
    for name, table, ddl in conn.exec_driver_sql(
        "SELECT conname, conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'u' AND conrelid::regclass::text = ANY(%s)",
        (list(tables),),
    ).all():
        conn.exec_driver_sql(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        back.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {ddl}')
    for name, ddl in conn.exec_driver_sql(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) AND indexname NOT LIKE 'pk_%%'",
        (list(tables),),
    ).all():
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
        back.append(ddl)
    return back


def _cpu_meter(engine: Any) -> dict[str, float]:
    """Seconds of CPU the database spends: this process for SQLite; for a PostgreSQL server on this
    machine, the backends' CPU (from /proc) over each statement. Wall time on a shared, loaded
    machine says little; CPU time is what the run costs."""
    spent: dict[str, Any] = {"db": 0.0, "statements": []}
    if engine.dialect.name != "postgresql" or not Path("/proc/self/stat").exists():
        return spent
    from sqlalchemy import event

    hz = os.sysconf("SC_CLK_TCK")

    def cpu(pid: int) -> float:
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the server runs elsewhere: no figure
            return 0.0
        return (int(f[11]) + int(f[12])) / hz

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, *_a: Any) -> None:
        pid = conn.connection.dbapi_connection.info.backend_pid
        conn.info["cg_cpu"] = (pid, cpu(pid), time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, _cursor: Any, statement: str, *_a: Any) -> None:
        pid, before, t = conn.info.pop("cg_cpu", (None, 0.0, 0.0))
        if pid is not None:
            used = cpu(pid) - before
            spent["db"] += used
            # The statements that took longest (wall, backend CPU), to see where a run's time goes.
            spent["statements"].append(
                (round(time.perf_counter() - t, 2), round(used, 1), " ".join(statement.split())[:90])
            )

    return spent


def child_run(url: str, as_of: dt.date) -> dict[str, Any]:
    """One daily run in this (fresh) process."""
    from sqlalchemy import text

    from collectguard.bootstrap import build
    from collectguard.services.daily import daily_run
    from collectguard.settings import Settings

    c = build(Settings(database_url=url, environment="test"), migrate=False)
    spent = _cpu_meter(c.engine)
    t, cpu0 = time.perf_counter(), time.process_time()
    summary = daily_run(c, as_of=as_of)
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu0
    with c.engine.connect() as conn:
        stages = conn.execute(text("SELECT summary FROM daily_run WHERE as_of = :d"), {"d": as_of}).scalar_one()
    stages = stages if isinstance(stages, dict) else json.loads(stages)
    return {
        "as_of": as_of.isoformat(),
        "seconds": round(seconds, 2),
        "cpu_seconds": {"python": round(cpu, 1), "postgres_backends": round(spent["db"], 1)},
        "loans_per_second": round(summary["loans"] / seconds) if seconds else None,
        "load_average": os.getloadavg(),
        "peak_rss_mb": _peak_mb(),
        "stage_seconds": {k: v["seconds"] for k, v in stages["stages"].items()},
        "slowest_statements": sorted(spent["statements"], reverse=True)[:12],
        "loans_rederived": stages["stages"]["positions"].get("rederived"),
        "loans_derived_in_full": stages["stages"]["positions"].get("derived"),
        "positions_mode": stages["stages"]["positions"].get("mode"),
        "summary": {
            k: summary[k] for k in ("loans", "buckets", "cases_opened", "cases_closed", "queue", "queue_denied")
        },
    }


def child_duckdb(n: int) -> dict[str, Any]:
    """The same portfolio in DuckDB (in memory), and the bucket counts by one query."""
    import duckdb

    con = duckdb.connect()
    dl = Dialect("duckdb")
    t = time.perf_counter()
    con.execute(
        "CREATE TABLE borrower (id BIGINT, tenant_id BIGINT, ext_id VARCHAR, name_enc VARCHAR, "
        "phone_enc VARCHAR, phone_hmac VARCHAR, jurisdiction VARCHAR, timezone VARCHAR, language VARCHAR, "
        "status VARCHAR, created_at TIMESTAMP)"
    )
    con.execute(
        "CREATE TABLE loan (id BIGINT, tenant_id BIGINT, ext_id VARCHAR, borrower_id BIGINT, "
        "product VARCHAR, "
        "lender_type VARCHAR, principal BIGINT, currency VARCHAR, annual_rate BIGINT, upfront_fees BIGINT, "
        "disbursed_on DATE, lpr_at_signing BIGINT, dpd INTEGER, bucket VARCHAR, debt_status VARCHAR, "
        "created_at TIMESTAMP)"
    )
    con.execute(
        "CREATE TABLE installment (loan_id BIGINT, seq INTEGER, due_date DATE, principal_due BIGINT, "
        "interest_due BIGINT, fee_due BIGINT)"
    )
    con.execute("CREATE TABLE payment (loan_id BIGINT, paid_on DATE, amount BIGINT, created_at TIMESTAMP)")
    for table, stmt in _statements(dl, n, "TIMESTAMP '2026-01-01 00:00:00'"):
        if table != "borrower":
            con.execute(stmt.replace("X'00'", "'x'"))
    load = time.perf_counter() - t
    t, cpu0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    counts = dict(con.execute(DUCKDB_BUCKETS.format(d=AS_OF.isoformat())).fetchall())
    seconds, cpu1 = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF)
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 1),
        "load_seconds": round(load, 1),
        "peak_rss_mb": _peak_mb(),
        "loans_per_second": round(sum(counts.values()) / seconds) if seconds else None,
        "buckets": {k: int(v) for k, v in counts.items()},
    }


def _child(*args: str) -> dict[str, Any]:
    p = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if p.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loans", type=int, default=1_000_000)
    ap.add_argument("--backend", choices=("sqlite", "postgres", "duckdb"), default="sqlite")
    ap.add_argument("--pg-url", default=os.environ.get("COLLECTGUARD_TEST_POSTGRES_URL"))
    ap.add_argument("--no-duckdb", action="store_true", help="skip the DuckDB baseline")
    ap.add_argument(
        "--sqlite-file",
        type=Path,
        help="keep the generated SQLite portfolio here and reuse it "
        "(each measurement runs on a fresh copy; generation is skipped when the file exists)",
    )
    ap.add_argument(
        "--pg-template",
        help="keep the generated PostgreSQL portfolio in this database and reuse "
        "it (each measurement runs on a copy made with CREATE DATABASE … TEMPLATE)",
    )
    ap.add_argument("--child-run", nargs=2, metavar=("URL", "AS_OF"), help=argparse.SUPPRESS)
    ap.add_argument("--child-duckdb", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child_run:
        print(json.dumps(child_run(a.child_run[0], dt.date.fromisoformat(a.child_run[1])), ensure_ascii=False))
        return
    if a.child_duckdb:
        print(json.dumps(child_duckdb(a.child_duckdb)))
        return
    out: dict[str, Any] = {
        "loans": a.loans,
        "backend": a.backend,
        "installments_per_loan": 6,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
    }
    if a.backend != "duckdb":
        url, cleanup = _database(a.backend, a.pg_url, a.pg_template if a.backend == "postgres" else None, a.loans)
        try:
            if a.backend == "sqlite" and a.sqlite_file:
                out["generate_seconds"] = _reuse(a.sqlite_file, url, a.loans)
            elif a.backend == "postgres" and a.pg_template:
                out["generate_seconds"] = "reused"
            else:
                out["generate_seconds"] = generate(url, a.loans)
            out["first_day"] = _child("--child-run", url, AS_OF.isoformat())
            out["next_day"] = _child("--child-run", url, (AS_OF + dt.timedelta(days=1)).isoformat())
        finally:
            cleanup()
    if not a.no_duckdb:
        out["duckdb"] = _child("--child-duckdb", str(a.loans))
        if "first_day" in out:
            mine = {k: v for k, v in out["first_day"]["summary"]["buckets"].items() if v}
            out["duckdb"]["same_buckets"] = mine == out["duckdb"]["buckets"]
    print(json.dumps(out, ensure_ascii=False))


def _reuse(kept: Path, url: str, n: int) -> float | str:
    """Generate the portfolio into ``kept`` unless it is there, then copy it to ``url``'s file."""
    from sqlalchemy.engine import make_url

    from collectguard.adapters.db.engine import make_engine, upgrade

    took: float | str = "reused"
    if not kept.exists():
        took = generate(f"sqlite:///{kept}", n)
    con = sqlite3.connect(kept)
    try:  # fold the WAL into the file so that one copy holds everything
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        loans = con.execute("SELECT COUNT(*) FROM loan").fetchone()[0]
    finally:
        con.close()
    if loans != n:
        raise SystemExit(f"{kept} holds {loans} loans, not {n}; remove it or give its --loans")
    target = make_url(url).database
    assert target is not None
    shutil.copyfile(kept, target)
    engine = make_engine(url)
    upgrade(engine)  # a migration added since the file was generated (an index) applies to the copy
    engine.dispose()
    return took


def _database(backend: str, pg_url: str | None, template: str | None = None, n: int = 0) -> tuple[str, Any]:
    if backend == "sqlite":
        folder = tempfile.mkdtemp(prefix="cg-bench-")
        path = Path(folder) / "bench.db"

        def rm() -> None:
            for p in Path(folder).iterdir():
                p.unlink()
            Path(folder).rmdir()

        return f"sqlite:///{path}", rm
    if not pg_url:
        raise SystemExit("set COLLECTGUARD_TEST_POSTGRES_URL or --pg-url for --backend postgres")
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from collectguard.adapters.db.engine import normalise_url

    admin = create_engine(normalise_url(pg_url), isolation_level="AUTOCOMMIT")
    name = f"cg_bench_{uuid.uuid4().hex[:10]}"
    base = make_url(normalise_url(pg_url))
    if template is not None:
        if not template.replace("_", "").isalnum():
            raise SystemExit("--pg-template: letters, digits and _ only")
        with admin.connect() as conn:
            exists = conn.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = %s", (template,)).first()
            if not exists:
                conn.exec_driver_sql(f'CREATE DATABASE "{template}"')
        kept = base.set(database=template).render_as_string(hide_password=False)
        if not exists:
            generate(kept, n)
        else:  # a migration added since the template was generated applies to it (and so to each copy)
            from collectguard.adapters.db.engine import make_engine, upgrade

            engine = make_engine(kept)
            upgrade(engine)
            engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    else:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return base.set(database=name).render_as_string(hide_password=False), drop


if __name__ == "__main__":
    main()
