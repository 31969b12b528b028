"""The positions stage of the daily run on PostgreSQL: every loan on the first run, then only the
loans whose balances can have moved since the last one.

DESIGN §13 depends on the date D in exactly three ways: installments count as overdue once their
due date is before D, payments count from their date on, and DPD = D − the oldest unpaid due
date. So between two runs a loan's derived values move only when
- its installments or payments were inserted, changed or deleted (the ``loan_change`` journal,
  filled by statement-level triggers, migration 0008);
- the calendar reached its ``next_event_on`` (stored by the run that last derived it: the day
  after its next due date, or the date of its next later-dated payment);
- it is overdue: then only its DPD moves, by the days elapsed, and its bucket with it;
- it is under a payment plan (its schedule is the plan's: always derived again), was never
  derived (new), or its debt status disagrees with its balance (set back by hand).
The first kind, the second and the last are derived in full (passes A, B, C of ``daily_sql``);
overdue loans with nothing else to them keep their balances and only age (``candidates_sql``: the
oldest unpaid due date is ``as_of − dpd`` of their stored values). Every other loan keeps its
stored values, which are what a full computation gives on D.

The first run, ``--force``, and a run after one that did not record next events (written before
migration 0008) compute every loan, in id chunks. Both ways leave the same values (tests compare
them on random portfolios); the incremental one reads a few per cent of the installments.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, text

from collectguard.domain.delinquency import DEFAULT_BUCKETS, BucketScheme
from collectguard.services import daily_sql as q

EVENTS_KEY = "next_events"  # in the positions stage summary: this run stored next_event_on
CREATE_DS = (
    "CREATE TEMP TABLE ds (loan_id BIGINT PRIMARY KEY, paid BIGINT, total_due BIGINT, dpd INTEGER, "
    "bucket VARCHAR(8), outstanding BIGINT, overdue BIGINT, prev VARCHAR(8), next_event DATE)"
)
CREATE_DC = "CREATE TEMP TABLE dc (loan_id BIGINT PRIMARY KEY)"
# The journal is emptied by the run that takes it into account, in its own transaction: rows that
# a concurrent writer commits later are not visible to the DELETE and stay for the next run.
TAKE_CHANGES_SQL = "DELETE FROM loan_change"


def _prev(alias: str) -> str:
    """The bucket before this run (see ``daily_sql.positions_sql``)."""
    return f"""CASE WHEN {alias}.stored_as_of IS NULL THEN NULL
            WHEN {alias}.stored_as_of < :d THEN {alias}.stored_bucket
            ELSE COALESCE((SELECT h.from_bucket FROM bucket_history h
                           WHERE h.loan_id = {alias}.loan_id AND h.as_of = :d), {alias}.stored_bucket) END"""  # noqa: S608


def candidates_sql(scheme: BucketScheme = DEFAULT_BUCKETS) -> str:
    """One pass over ``loan``: INSERT into ``dc`` the loans to derive in full today, and into ``ds``
    the overdue loans that only age; the journal is taken by the same statement.

    Aged loans keep their balances and grow older by the days since they were derived (their
    oldest unpaid due date is ``as_of − dpd``); their ``paid`` is NULL, so pass B leaves them be.
    ``IS TRUE``: a loan without a next event (NULL) is not due for a full derivation (NULL is
    neither true nor false, and would leave the loan out of both tables).
    """
    closed = scheme.closed
    full = f"""(l.as_of IS NULL OR l.next_event_on <= :d OR l.id IN (SELECT loan_id FROM moved)
       OR (l.bucket = '{closed}' AND l.debt_status = 'valid') OR (l.bucket <> '{closed}' AND l.debt_status = 'paid'))"""  # noqa: S608
    return f"""
WITH taken AS (DELETE FROM loan_change RETURNING loan_id),
moved AS (SELECT loan_id FROM taken UNION SELECT loan_id FROM plan_installment),
scan AS MATERIALIZED (
  SELECT l.id AS loan_id, {full} IS TRUE AS in_full, :d - (l.as_of - l.dpd) AS dpd, l.outstanding,
         l.overdue_amount AS overdue, l.bucket AS stored_bucket, l.as_of AS stored_as_of, l.next_event_on
  FROM loan l WHERE l.disbursed_on <= :d AND (l.dpd > 0 OR {full})
),
aged AS (
  INSERT INTO ds (loan_id, paid, total_due, dpd, bucket, outstanding, overdue, prev, next_event)
  SELECT s.loan_id, NULL, NULL, s.dpd, {q.bucket_case(scheme, "s.dpd")}, s.outstanding, s.overdue, {_prev("s")},
         s.next_event_on
  FROM scan s WHERE NOT s.in_full
)
INSERT INTO dc (loan_id) SELECT loan_id FROM scan WHERE in_full
"""  # noqa: S608 - validated bucket names only; values are bound


def balances_sql(scheme: BucketScheme = DEFAULT_BUCKETS, *, plans: bool, only_dc: bool) -> str:
    """Pass A with next events: INSERT into ``ds`` the balances on ``:d`` of the loans in ``dc``
    (``only_dc``) or with ids in [:lo, :hi], keeping only those whose stored values differ.

    A chunk of the first run hashes its installments and payments; the few loans of an
    incremental run read theirs through the loan-id indexes, one loan at a time (``LATERAL``:
    PostgreSQL would otherwise scan all the installments to hash-join a few thousand loans).
    """
    first = scheme.edges[0][0]
    due = "i.principal_due + i.interest_due + i.fee_due"
    sc_cols = (
        f"SUM({due}) AS total_due, SUM({due}) FILTER (WHERE i.due_date < :d) AS due_before, "
        "MIN(i.due_date) FILTER (WHERE i.due_date >= :d) + 1 AS next_due"
    )
    pa_cols = (
        "SUM(p.amount) FILTER (WHERE p.paid_on <= :d) AS paid, "
        "MIN(p.paid_on) FILTER (WHERE p.paid_on > :d) AS next_paid"
    )
    if only_dc:
        source = f"""dc JOIN loan l ON l.id = dc.loan_id
  CROSS JOIN LATERAL (SELECT {sc_cols} FROM installment i WHERE i.loan_id = l.id) sc
  CROSS JOIN LATERAL (SELECT {pa_cols} FROM payment p WHERE p.loan_id = l.id) pa
  WHERE l.disbursed_on <= :d"""  # noqa: S608
    else:
        source = f"""loan l
  LEFT JOIN (SELECT i.loan_id, {sc_cols} FROM installment i WHERE i.loan_id BETWEEN :lo AND :hi
             GROUP BY i.loan_id) sc ON sc.loan_id = l.id
  LEFT JOIN (SELECT p.loan_id, {pa_cols} FROM payment p WHERE p.loan_id BETWEEN :lo AND :hi
             GROUP BY p.loan_id) pa ON pa.loan_id = l.id
  WHERE l.id BETWEEN :lo AND :hi AND l.disbursed_on <= :d"""  # noqa: S608
    bucket = f"CASE WHEN s.total_due <= s.paid THEN '{scheme.closed}' ELSE '{first}' END"
    outstanding = "CASE WHEN s.total_due > s.paid THEN s.total_due - s.paid ELSE 0 END"
    return f"""
INSERT INTO ds (loan_id, paid, total_due, dpd, bucket, outstanding, overdue, prev, next_event)
SELECT s.loan_id, s.paid, s.total_due, 0, {bucket}, {outstanding},
       CASE WHEN s.due_before > s.paid THEN s.due_before - s.paid ELSE 0 END, {_prev("s")}, s.next_event
FROM (
  SELECT l.id AS loan_id, l.bucket AS stored_bucket, l.as_of AS stored_as_of, l.dpd AS stored_dpd,
         l.outstanding AS stored_outstanding, l.overdue_amount AS stored_overdue, l.debt_status,
         l.next_event_on AS stored_next,
         COALESCE(pa.paid, 0) AS paid, COALESCE(sc.total_due, 0) AS total_due,
         COALESCE(sc.due_before, 0) AS due_before, LEAST(sc.next_due, pa.next_paid) AS next_event
  FROM {source}
) s
WHERE s.stored_as_of IS NULL OR s.due_before > s.paid OR s.stored_dpd <> 0 OR s.stored_bucket <> {bucket}
   OR COALESCE(s.stored_outstanding, -1) <> {outstanding} OR COALESCE(s.stored_overdue, -1) <> 0
   OR (s.debt_status = 'valid' AND s.total_due <= s.paid) OR (s.debt_status = 'paid' AND s.total_due > s.paid)
   OR s.stored_next IS DISTINCT FROM s.next_event
   {"OR s.loan_id IN (SELECT loan_id FROM dplan)" if plans else ""}
"""  # noqa: S608 - fixed identifiers and validated names; values are bound


def overdue_sql(scheme: BucketScheme = DEFAULT_BUCKETS) -> str:
    """Pass B (``daily_sql.overdue_sql``) reading each overdue loan's installments through the
    loan-id index (``LATERAL``), not by hashing every installment due before D; the loans aged by
    ``candidates_sql`` (``paid`` NULL) are not read."""
    due = "i.principal_due + i.interest_due + i.fee_due"
    return f"""
UPDATE ds SET dpd = o.dpd, bucket = {q.bucket_case(scheme, "o.dpd")}
FROM (SELECT d2.loan_id, :d - w.due_date AS dpd
      FROM ds d2 CROSS JOIN LATERAL (
        SELECT i.due_date, {due} AS due,
               SUM({due}) OVER (ORDER BY i.due_date, i.seq ROWS UNBOUNDED PRECEDING) AS cum
        FROM installment i WHERE i.loan_id = d2.loan_id AND i.due_date < :d) w
      WHERE d2.overdue > 0 AND d2.paid IS NOT NULL AND w.cum > d2.paid AND w.cum - w.due <= d2.paid) o
WHERE ds.loan_id = o.loan_id
"""  # noqa: S608 - fixed identifiers and validated names; values are bound


LOAN_UPDATE_SQL = f"""
UPDATE loan SET dpd = ds.dpd, bucket = ds.bucket, outstanding = ds.outstanding,
       overdue_amount = ds.overdue, as_of = :d, debt_status = {q._STATUS}, next_event_on = ds.next_event
FROM ds WHERE loan.id = ds.loan_id
  AND (loan.as_of IS NULL OR loan.dpd <> ds.dpd OR loan.bucket <> ds.bucket
       OR COALESCE(loan.outstanding, -1) <> ds.outstanding OR COALESCE(loan.overdue_amount, -1) <> ds.overdue
       OR loan.debt_status <> {q._STATUS} OR loan.next_event_on IS DISTINCT FROM ds.next_event)
"""  # noqa: S608 - fixed text

COUNTS_SQL = "SELECT bucket, COUNT(*) FROM loan WHERE disbursed_on <= :d GROUP BY bucket"
# An incremental run's counts are the last run's plus what moved: every loan it writes is in
# ``ds``, leaving ``prev`` (its stored bucket, or NULL for a loan never derived, which the last
# run did not count) for ``bucket``. Loans are never deleted, and a loan disbursed since the last
# run was never derived, so the last counts hold every other loan as it stands. One pass over the
# loans written instead of one over the whole book.
COUNTS_DELTA_SQL = """
SELECT b, SUM(n) FROM (SELECT bucket AS b, 1 AS n FROM ds
                       UNION ALL SELECT prev, -1 FROM ds WHERE prev IS NOT NULL) x
GROUP BY b"""


def positions_pg(
    conn: Connection,
    d: dt.date,
    scheme: BucketScheme,
    start: Any,
    chunk: int,
    *,
    full: bool,
    plans: bool,
    last_counts: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Derive the loans' positions on ``d``: all of them (``full``) or the ones that can have moved.

    ``last_counts``: the bucket counts of the run this one follows; an incremental run adds its
    changes to them (``COUNTS_DELTA_SQL``) instead of counting every loan again."""
    q.temp_table(conn, "ds")
    conn.exec_driver_sql(CREATE_DS)
    q.temp_table(conn, "dc")
    conn.exec_driver_sql(CREATE_DC)
    lo, hi = conn.execute(text("SELECT (SELECT MIN(id) FROM loan), (SELECT MAX(id) FROM loan)")).one()
    counts = dict.fromkeys(scheme.names, 0)
    if lo is None:
        conn.exec_driver_sql(TAKE_CHANGES_SQL)
        return {"loans": 0, "buckets": counts, EVENTS_KEY: True, "mode": "full"}
    recompute = conn.execute(q.dated(q.HISTORY_EXISTS_SQL), {"d": d}).first() is not None
    over = q.dated(overdue_sql(scheme))
    plan_pos, plan_over = q.dated(q.plan_positions_sql(scheme)), q.dated(q.plan_overdue_sql("postgresql", scheme))
    rederived = derived = aged = 0
    delta = not full and last_counts is not None and set(last_counts) == set(scheme.names)
    if delta:
        assert last_counts is not None
        counts = {name: int(last_counts[name]) for name in scheme.names}
    if full:
        conn.exec_driver_sql(TAKE_CHANGES_SQL)
        windows = [(a, min(hi, a + chunk - 1)) for a in range(lo, hi + 1, chunk)]
    else:
        # Short statements over a few loans each: compiling them (JIT) would cost more than it saves.
        conn.exec_driver_sql("SET LOCAL jit = off")
        conn.execute(q.dated(candidates_sql(scheme)), {"d": d})
        aged = int(conn.execute(text("SELECT COUNT(*) FROM ds")).scalar_one())
        conn.exec_driver_sql("ANALYZE dc")
        windows = [(lo, hi)]
    advance = start("positions (DPD, buckets)", len(windows))
    pos = q.dated(balances_sql(scheme, plans=plans, only_dc=not full))
    for a, b in windows:
        if full:
            conn.exec_driver_sql("TRUNCATE ds")
        conn.execute(pos, {"d": d, "lo": a, "hi": b})
        derived += int(conn.execute(text("SELECT COUNT(*) FROM ds")).scalar_one()) - aged
        conn.exec_driver_sql("ANALYZE ds")
        conn.execute(over, {"d": d})
        q.window_plans_and_history(
            conn, d, a, b, plan_statements=(plan_pos, plan_over) if plans else None, recompute=recompute
        )
        conn.execute(q.dated(LOAN_UPDATE_SQL), {"d": d})
        rederived += int(conn.execute(text("SELECT COUNT(*) FROM ds")).scalar_one())
        if delta:
            for bucket, n in conn.execute(text(COUNTS_DELTA_SQL)):
                counts[bucket] = counts.get(bucket, 0) + int(n)
        advance(1)
    if full:  # the whole table changed: later statements (cases, queue, tomorrow's run) plan on its new values
        conn.exec_driver_sql("ANALYZE loan")
    if not delta:
        for bucket, n in conn.execute(q.dated(COUNTS_SQL), {"d": d}):
            counts[bucket] = counts.get(bucket, 0) + int(n)
    for name in ("ds", "dc"):
        q.temp_table(conn, name)
    # ``rederived``: loans written through the temp table (derived in full and changed, or aged);
    # ``derived``: of them, the ones whose installments and payments were read.
    return {
        "loans": sum(counts.values()),
        "buckets": counts,
        "rederived": rederived,
        "derived": derived,
        "mode": "full" if full else "incremental",
        EVENTS_KEY: True,
    }
