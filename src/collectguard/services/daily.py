"""The daily run (DESIGN §7 ``daily``, §13): DPD, buckets, history, cases, PTPs, assignment, queue.

Stages, each one transaction that records itself as done in the ``daily_run`` row of its date:

    positions  DPD, bucket, outstanding and overdue of every loan (set-based SQL, in id chunks;
               on PostgreSQL after the first run only the loans that can have moved:
               services/daily_pg.py), a ``bucket_history`` row for each loan whose bucket changed
    cases      close cured / paid cases, follow open ones, open one per loan past due
    assign     hand unassigned open cases to collectors and agencies by capacity
    outcomes   settle promises to pay and payment plans
    queue      today's work queue, each action pre-checked by the guard at its planned time

Idempotent: a date whose run is ``done`` is not run again (its stored summary is returned)
unless ``force``; every statement is written so that running a stage again writes nothing new.
Resumable: a run killed at any point leaves whole stages done or not done; the next run for the
same date does the rest. Runs go forward in time: a date before the latest run is refused,
because the ledger holds one state per loan and history rows are deltas from the previous run.
Loans disbursed after the as-of date are left out (they owe nothing yet and are not counted).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from collectguard.adapters.db.models import DailyRun
from collectguard.bootstrap import Container
from collectguard.domain.delinquency import DEFAULT_BUCKETS, BucketScheme
from collectguard.errors import Conflict
from collectguard.services import daily_sql as q
from collectguard.services.audit import audit_append
from collectguard.services.daily_pg import EVENTS_KEY, positions_pg

STAGES = ("costs", "positions", "cases", "assign", "outcomes", "queue")
_OWN_BARS = ("costs", "positions", "cases", "queue")  # stages that report their own progress
HOME_ZONE = ZoneInfo("Asia/Shanghai")  # the default as-of date is "today" where the platform runs
DEFAULT_CHUNK = {"sqlite": 250_000, "postgresql": 2_000_000}

Advance = Callable[[int], None]
Progress = Callable[[str, int], Advance]
StageHook = Callable[[str], None]


def _quiet(description: str, total: int) -> Advance:
    return lambda n: None


def daily_default_as_of(c: Container) -> dt.date:
    """Today in Asia/Shanghai, from the container's clock."""
    return c.clock().astimezone(HOME_ZONE).date()


def daily_run(
    c: Container,
    *,
    as_of: dt.date | None = None,
    force: bool = False,
    progress: Progress | None = None,
    stage_hook: StageHook | None = None,
    buckets: BucketScheme = DEFAULT_BUCKETS,
    guard: Any = None,
    chunk: int | None = None,
) -> dict[str, Any]:
    """Run (or finish, or with ``force`` recompute) the daily run for ``as_of``; return its summary.

    ``stage_hook(name)`` is called inside each stage's transaction after its work and before its
    commit (tests raise there to simulate a crash). ``guard`` defaults to ``Guard.default()``.
    """
    from collectguard.services.costs import CAPPED, loan_apr_fill
    from collectguard.services.outcomes import outcomes_settle
    from collectguard.services.queue import queue_assign, queue_build

    d = as_of or daily_default_as_of(c)
    start = progress or _quiet
    try:
        stored = _begin(c, d, force=force)
    except IntegrityError:  # another process created the row first: join its run
        stored = _begin(c, d, force=False)
    if stored is not None:
        return stored
    if guard is None:
        from collectguard.rules import Guard

        guard = Guard.default()
    now = c.clock()
    work: dict[str, Callable[[Session], dict[str, Any]]] = {
        # First the true APR of capped loans without one: the queue's guard checks judge it.
        "costs": lambda s: loan_apr_fill(s, progress=start, lender_types=CAPPED),
        "positions": lambda s: _positions(s, d, buckets, start, chunk, full=force),
        "cases": lambda s: _cases(s, d, buckets, start),
        "assign": lambda s: queue_assign(s, as_of=d, buckets=buckets, now=now),
        "outcomes": lambda s: outcomes_settle(s, as_of=d, now=now),
        "queue": lambda s: queue_build(s, as_of=d, guard=guard, now=now, progress=start),
    }
    for name in STAGES:
        _stage(c, d, name, work[name], stage_hook, start)
    return _finish(c, d)


def daily_summary(c: Container, *, as_of: dt.date) -> dict[str, Any] | None:
    """The stored summary of the run for ``as_of`` (None when there was none)."""
    with c.uow(write=False) as s:
        run = s.scalar(select(DailyRun).where(DailyRun.as_of == as_of))
        if run is None or not run.summary:
            return None
        return _public(run.as_of, run.summary) if run.status == "done" else dict(run.summary)


def _run_row(s: Session, d: dt.date) -> DailyRun | None:
    # FOR UPDATE serialises two runs of one date on PostgreSQL; SQLite writers are serial anyway.
    return s.scalar(select(DailyRun).where(DailyRun.as_of == d).with_for_update())


def _begin(c: Container, d: dt.date, *, force: bool) -> dict[str, Any] | None:
    with c.uow() as s:
        latest = s.scalar(select(func.max(DailyRun.as_of)))
        if latest is not None and latest > d:
            raise Conflict(
                f"the daily run for {latest.isoformat()} exists; runs go forward in time, "
                f"so {d.isoformat()} cannot be run now"
            )
        run = _run_row(s, d)
        now = c.clock()
        if run is None:
            s.add(DailyRun(as_of=d, status="running", started_at=now, summary={"stages": {}}))
        elif run.status == "done" and not force:
            return _public(run.as_of, run.summary or {})
        elif run.status == "done":
            run.status, run.finished_at, run.started_at = "running", None, now
            run.summary = {"stages": {}}
    return None


def _stage(
    c: Container,
    d: dt.date,
    name: str,
    fn: Callable[[Session], dict[str, Any]],
    hook: StageHook | None,
    start: Progress,
) -> None:
    with c.uow() as s:
        run = _run_row(s, d)
        assert run is not None
        stages = dict((run.summary or {}).get("stages", {}))
        if name in stages:
            return  # done by an earlier, interrupted run
        t = time.perf_counter()
        bar = None if name in _OWN_BARS else start(name, 1)
        result = fn(s)
        if bar is not None:
            bar(1)
        result["seconds"] = round(time.perf_counter() - t, 3)
        if hook is not None:
            hook(name)
        stages[name] = result
        run.summary = {**(run.summary or {}), "stages": stages}  # a new dict: JSON columns track by identity


def _finish(c: Container, d: dt.date) -> dict[str, Any]:
    with c.uow() as s:
        run = _run_row(s, d)
        assert run is not None
        if run.status == "done":
            return _public(d, run.summary or {})
        run.status, run.finished_at = "done", c.clock()
        stages = (run.summary or {})["stages"]
        out = _public(d, {"stages": stages})
        run.summary = {**out, "stages": stages}
        audit_append(
            s,
            tenant_id=None,
            actor="system:daily",
            action="daily.run",
            subject=f"daily_run:{d}",
            payload={k: v for k, v in out.items() if k != "seconds"},
            now=c.clock(),
        )
        return out


def _public(d: dt.date, summary: dict[str, Any]) -> dict[str, Any]:
    """The ``--json`` shape (DESIGN §7) from the stages' results."""
    st = summary.get("stages", {})
    pos, cases = st.get("positions", {}), st.get("cases", {})
    out, queue = st.get("outcomes", {}), st.get("queue", {})
    return {
        "as_of": d.isoformat(),
        "loans": pos.get("loans", 0),
        "buckets": pos.get("buckets", {}),
        "cases_opened": cases.get("cases_opened", 0),
        "cases_closed": cases.get("cases_closed", 0),
        "ptp": out.get("ptp", {}),
        "plans": out.get("plans", {}),
        "assigned": st.get("assign", {}).get("assigned", {}),
        "queue": queue.get("queue", 0),
        "queue_denied": queue.get("denied", {}),
        "queue_skipped": queue.get("skipped", {}),
        "apr_computed": st.get("costs", {}).get("loans", 0) - st.get("costs", {}).get("unavailable", 0),
        "seconds": round(sum(float(v.get("seconds", 0)) for v in st.values()), 3),
    }


def _positions(
    s: Session, d: dt.date, scheme: BucketScheme, start: Progress, chunk: int | None, *, full: bool = False
) -> dict[str, Any]:
    conn = s.connection()
    dn = conn.dialect.name
    if dn == "postgresql":
        # Hash aggregates and the window sort of a chunk fit in memory instead of spilling.
        conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
        plans = _plans(conn, d)
        last = _last_positions(s, d)
        full = full or not (last or {}).get(EVENTS_KEY)
        counts = None if last is None else last.get("buckets")
        out = positions_pg(
            conn, d, scheme, start, chunk or DEFAULT_CHUNK[dn], full=full, plans=plans, last_counts=counts
        )
        q.temp_table(conn, "dplan")
        return out
    q.temp_table(conn, "ds")
    conn.exec_driver_sql(q.CREATE_DS[dn])
    lo, hi = conn.execute(text("SELECT (SELECT MIN(id) FROM loan), (SELECT MAX(id) FROM loan)")).one()
    counts = dict.fromkeys(scheme.names, 0)
    if lo is None:
        return {"loans": 0, "buckets": counts}
    step = chunk or DEFAULT_CHUNK.get(dn, 250_000)
    advance = start("positions (DPD, buckets)", hi - lo + 1)
    recompute = conn.execute(q.dated(q.HISTORY_EXISTS_SQL), {"d": d}).first() is not None
    plans = _plans(conn, d)
    mark = int(conn.execute(text(q.MARK_SQL)).scalar_one())
    since = None if full or dn != "sqlite" else _last_mark(s, d)
    if since is not None:  # loans the last run found closed are skipped unless given a new installment
        q.temp_table(conn, "dnew")
        conn.exec_driver_sql(q.CREATE_DNEW)
        conn.execute(text(q.DNEW_SQL), {"mark": since})
    pos = q.dated(q.positions_sql(dn, scheme, plans=plans, skip_closed=since is not None))
    over = q.dated(q.overdue_sql(dn, scheme))
    plan_pos, plan_over = q.dated(q.plan_positions_sql(scheme)), q.dated(q.plan_overdue_sql(dn, scheme))
    rederived = 0
    for a in range(lo, hi + 1, step):
        b = min(hi, a + step - 1)
        conn.exec_driver_sql("DELETE FROM ds")
        conn.execute(pos, {"d": d, "lo": a, "hi": b})
        conn.execute(over, {"d": d})
        q.window_plans_and_history(
            conn, d, a, b, plan_statements=(plan_pos, plan_over) if plans else None, recompute=recompute
        )
        conn.execute(q.dated(q.LOAN_UPDATE_SQL), {"d": d, "lo": a, "hi": b})
        for bucket, n in conn.execute(q.dated(q.COUNTS_SQL), {"d": d, "lo": a, "hi": b}):
            counts[bucket] = counts.get(bucket, 0) + int(n)
        rederived += conn.execute(text("SELECT COUNT(*) FROM ds")).scalar_one()
        advance(b - a + 1)
    for name in ("ds", "dplan", "dnew"):
        q.temp_table(conn, name)
    # ``rederived``: loans that went through the temp table (never computed, overdue, under a plan,
    # or with values that changed; the rest kept theirs); ``installment_mark`` lets the next run
    # find the installments added after this one (CLOSED_SKIP).
    return {"loans": sum(counts.values()), "buckets": counts, "rederived": int(rederived), "installment_mark": mark}


def _last_mark(s: Session, d: dt.date) -> int | None:
    """The installment mark of the latest run up to ``d`` whose positions stage is done (None: none)."""
    rows = s.scalars(select(DailyRun.summary).where(DailyRun.as_of <= d).order_by(DailyRun.as_of.desc()).limit(3))
    for summary in rows:
        mark = ((summary or {}).get("stages", {}).get("positions") or {}).get("installment_mark")
        if isinstance(mark, int):
            return mark
    return None


def _last_positions(s: Session, d: dt.date) -> dict[str, Any] | None:
    """The positions stage summary of the latest run up to ``d`` whose positions stage is done.

    On PostgreSQL the run derives just the loans that moved only when that run stored every loan's
    next event (``EVENTS_KEY``, migration 0008 on); its bucket counts are then the baseline that
    this run's changes are added to."""
    rows = s.scalars(select(DailyRun.summary).where(DailyRun.as_of <= d).order_by(DailyRun.as_of.desc()).limit(3))
    for summary in rows:
        positions = (summary or {}).get("stages", {}).get("positions")
        if positions is not None:
            return dict(positions)
    return None


def _plans(conn: Any, d: dt.date) -> bool:
    """Fill the temp table ``dplan`` with the plan governing each loan on ``d``; False when none does."""
    q.temp_table(conn, "dplan")
    conn.exec_driver_sql(q.CREATE_DPLAN[conn.dialect.name])
    conn.execute(q.dated(q.DPLAN_SQL), {"d": d})
    return conn.execute(text("SELECT 1 FROM dplan LIMIT 1")).first() is not None


def _cases(s: Session, d: dt.date, scheme: BucketScheme, start: Progress) -> dict[str, Any]:
    conn = s.connection()
    if conn.dialect.name == "postgresql":  # the open cases' loans hashed in memory, not in batches on disk
        conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
    advance = start("cases", len(q.CASES_SQL) + 1)
    params = {"d": d, "current": scheme.edges[0][0]}
    for stmt in q.CASES_SQL:
        conn.execute(q.dated(stmt), params)
        advance(1)
    q.temp_table(conn, "dopen")
    conn.exec_driver_sql(q.CREATE_DOPEN[conn.dialect.name])
    conn.execute(text(q.DOPEN_SQL))
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ANALYZE dopen")  # a hash anti-join, sized to the open cases
    conn.execute(q.dated(q.CASE_OPEN_SQL), params)
    q.temp_table(conn, "dopen")
    advance(1)
    opened, closed = conn.execute(q.dated(q.CASE_COUNTS_SQL), {"d": d}).one()
    return {"cases_opened": int(opened), "cases_closed": int(closed)}
