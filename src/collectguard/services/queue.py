"""Work queues: today's actions per open case, each pre-checked by the guard; assignment by capacity.

``queue_build`` (the daily run's last stage) expands the strategies' steps due today into
candidate actions in SQL, with the stored facts the guard reads (consents, today's attempts,
calls in 7 days, 失联, outsourcing, debt status and rate …). Candidates with identical facts share
one guard call (``sig``): a queue of a million actions costs as many guard calls as there are
distinct situations. Only allowed actions become ``work_item`` rows; denied ones are counted by
rule id. Actions planned earlier the same day to the same person count as history, so the queue
never plans past a cap. A paused case (dispute, hardship, payment plan) gets no actions.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, DateTime, bindparam, select, text, update
from sqlalchemy.orm import Session

from collectguard.adapters.db.models import Case, Tenant, User
from collectguard.adapters.db.models_ledger import AgencyContract, CaseAssignment, CollectorCapacity, WorkItem
from collectguard.adapters.db.types import RATE_SCALE
from collectguard.domain.event import parse_event
from collectguard.errors import BadInput, CollectguardError, Conflict, NotFound
from collectguard.services import daily_sql as q
from collectguard.services.audit import audit_append
from collectguard.services.strategies import (
    SAMPLE,
    StrategySpec,
    opt_out_offered,
    outsourced_buckets,
    render,
    strategy_for,
    strategy_steps,
)

Progress = Callable[[str, int], Callable[[int], None]]
WITHDRAWN_BITS = ((1, "contact_list"), (2, "third_party_contact"), (4, "agreed_hours"))


def queue_build(s: Session, *, as_of: dt.date, guard: Any, now: dt.datetime,
                progress: Progress | None = None) -> dict[str, Any]:
    """Build the work queue of ``as_of`` (idempotent: existing items are kept, none duplicated)."""
    conn = s.connection()
    advance = (progress or (lambda d, n: lambda k: None))("queue (guard pre-check)", 5)
    if conn.dialect.name == "postgresql":
        # The candidates are sorted four times (caps by person and channel, then by their facts):
        # sorted in memory, not merged through files (a queue of a million actions is ~300 MB of
        # sort input; the default 4 MB spills almost all of it).
        conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
        # Its statements are long lists of expressions over rows read by index: compiling them
        # (JIT, which a large book's cost estimates switch on) costs more than it saves.
        conn.exec_driver_sql("SET LOCAL jit = off")
    for name, cols in q.QUEUE_TEMP.items():
        q.temp_table(conn, name, cols)
    conn.execute(q.dated("INSERT INTO q_p (d, d3, d7) VALUES (:d, :d3, :d7)"),
                 {"d": as_of, "d3": as_of - dt.timedelta(days=3), "d7": as_of - dt.timedelta(days=6)})
    specs, skipped = _load_steps(s, conn)
    advance(1)
    for name, stmt in (("q_hr", q.HIST_RECIPIENT_SQL), ("q_hb", q.HIST_BORROWER_SQL), ("q_fl", q.FLAGS_SQL),
                       ("q_k", q.CONSENT_SQL.format(hours=q.HOURS_JSON[conn.dialect.name])),
                       ("q_cand", q.candidates_sql(conn.dialect.name))):
        q.temp_table(conn, name)
        conn.execute(text(stmt))
    advance(1)
    apps = {i: n for i, n in s.execute(select(Tenant.id, Tenant.name))}
    rows = conn.execute(text(q.SIGNATURES_SQL)).mappings().all()
    slots: dict[tuple[str, str], dt.datetime | None] = {}
    verdicts = [_verdict(r, specs, apps, slots, as_of, guard) for r in rows]
    if verdicts:
        conn.execute(text("INSERT INTO q_verdict (sig, allow, rules, pack) "
                          "VALUES (:sig, :allow, :rules, :pack)"), verdicts)
    ok_slots = [{"tz": tz, "t": t, "at": at.astimezone(dt.UTC)} for (tz, t), at in slots.items() if at]
    if ok_slots:
        conn.execute(text("INSERT INTO q_slot (timezone, local_time, planned_at) VALUES (:tz, :t, :at)")
                     .bindparams(bindparam("at", type_=DateTime(timezone=True))), ok_slots)
    advance(1)
    conn.execute(q.dated(q.QUEUE_INSERT_SQL), {"d": as_of})
    denied: Counter[str] = Counter()
    for rules, n in conn.execute(text(q.QUEUE_DENIED_SQL)):
        for rule in (rules or "unknown").split():
            denied[rule] += int(n)
    queued = conn.execute(q.dated("SELECT COUNT(*) FROM work_item WHERE as_of = :d AND status = 'planned'"),
                          {"d": as_of}).scalar_one()
    advance(1)
    for name in ("q_cand", "q_hr", "q_hb", "q_fl", "q_k", *q.QUEUE_TEMP):
        q.temp_table(conn, name)
    advance(1)
    return {"queue": int(queued), "denied": dict(sorted(denied.items())), "skipped": skipped,
            "guard_calls": len(verdicts)}


def _load_steps(s: Session, conn: Connection) -> tuple[dict[tuple[int, str], StrategySpec], dict[str, str]]:
    """Fill ``q_step`` with the strategy of every (tenant, jurisdiction) that has open cases."""
    pairs = conn.execute(text("SELECT DISTINCT c.tenant_id, b.jurisdiction FROM collection_case c "
                              "JOIN borrower b ON b.id = c.borrower_id WHERE c.status = 'open'")).all()
    specs: dict[tuple[int, str], StrategySpec] = {}
    skipped: dict[str, str] = {}
    rows = []
    for tenant_id, jurisdiction in pairs:
        try:
            spec = strategy_for(s, tenant_id=tenant_id, jurisdiction=jurisdiction)
            steps = strategy_steps(spec)
        except CollectguardError as exc:  # fail closed: no strategy, no actions for these cases
            skipped[f"{tenant_id}:{jurisdiction}"] = exc.message
            continue
        specs[(tenant_id, jurisdiction)] = spec
        rows += [{**r, "tenant_id": tenant_id} for r in steps]
    if rows:
        cols = ("tenant_id", "jurisdiction", "bucket", "base", "day", "every", "step", "channel", "role",
                "purpose", "template", "local_time")
        conn.execute(text(f"INSERT INTO q_step ({', '.join(cols)}) "  # noqa: S608 - fixed column names
                          f"VALUES ({', '.join(':' + c for c in cols)})"), rows)
    return specs, skipped


def _slot(slots: dict[tuple[str, str], dt.datetime | None], tz: str, hhmm: str,
          day: dt.date) -> dt.datetime | None:
    key = (tz, hhmm)
    if key not in slots:
        try:
            local = dt.datetime.combine(day, dt.time.fromisoformat(hhmm), tzinfo=ZoneInfo(tz))
        except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
            local = None
        slots[key] = local
    return slots[key]


def _verdict(r: Any, specs: dict[tuple[int, str], StrategySpec], apps: dict[int, str],
             slots: dict[tuple[str, str], dt.datetime | None], day: dt.date, guard: Any) -> dict[str, Any]:
    """Judge one distinct situation; anything that cannot be judged is denied (fail closed)."""
    local = _slot(slots, r["timezone"], r["local_time"], day)
    if local is None:
        return {"sig": r["sig"], "allow": 0, "rules": "queue.bad_timezone", "pack": ""}
    spec = specs[(r["tenant_id"], r["jurisdiction"])]
    lang = r["language"]
    values = {**SAMPLE[lang], "app": apps.get(r["tenant_id"], ""), "dpd": str(r["dpd"])}
    message = render(spec.templates[r["template"]][lang], values)
    recipient: dict[str, Any] = {"role": r["role"], "no_contact_requested": bool(r["no_contact"]),
                                 "represented_by_attorney": bool(r["attorney"]),
                                 "employer_prohibits": bool(r["employer"])}
    if r["source"]:
        recipient["source"] = r["source"]
    history: dict[str, Any] = {k: int(r[k]) for k in ("messages_today", "calls_7d")}
    history |= {"connected_calls_today": int(r["connected_today"]),
                "attempts_today_same_method": int(r["attempts_today"]),
                "borrower_unreachable": bool(r["unreachable"]),
                "prior_contacts_with_recipient": int(r["prior"])}
    if int(r["last_conv"]) >= 0:
        history["last_conversation_at"] = (day - dt.timedelta(days=int(r["last_conv"]))).isoformat()
    debt: dict[str, Any] = {"days_past_due": int(r["dpd"]), "status": r["debt_status"],
                            "lender_type": r["lender_type"],
                            "annual_rate": str(Decimal(int(r["rate"])) / RATE_SCALE)}
    if int(r["lpr"]) >= 0:
        debt["lpr_at_signing"] = str(Decimal(int(r["lpr"])) / RATE_SCALE)
    event = {
        "jurisdiction": r["jurisdiction"], "channel": r["channel"], "time": local.isoformat(),
        "purpose": r["purpose"], "recipient": recipient, "message": message, "history": history, "debt": debt,
        "consent": {"contact_list": r["cl"], "third_party_contact": r["tp"],
                    "agreed_hours": r["hours"] or None,
                    "withdrawn": [k for bit, k in WITHDRAWN_BITS if int(r["withdrawn"]) & bit]},
        "collector": {"kind": r["collector_kind"], "processing_contract": bool(r["contract"]),
                      "outsourcing_notified": bool(r["notified"]),
                      # The template is the message: it carries the opt-out (Reg F 1006.6(e)) or not.
                      "opt_out_included": opt_out_offered(message)},
    }
    try:
        decision = guard.check(parse_event(event))
    except CollectguardError:  # a stored fact the event model refuses: never plan on a guess
        return {"sig": r["sig"], "allow": 0, "rules": "queue.bad_facts", "pack": ""}
    rules = " ".join(v.rule for v in decision.violations)[:500]
    pack = f"{decision.pack}@{decision.pack_version or ''}"[:48]
    return {"sig": r["sig"], "allow": int(decision.verdict == "allow"), "rules": rules, "pack": pack}


# ---------------------------------------------------------------- assignment

def queue_assign(s: Session, *, as_of: dt.date, buckets: Any, now: dt.datetime) -> dict[str, Any]:
    """Daily-run stage: hand unheld open cases to agencies (buckets the strategy outsources, agencies
    with an entrusted-processing contract), then the rest to collectors, by remaining capacity.

    Worst cases first (highest DPD); holders take turns, so load spreads evenly. Idempotent: only
    cases nobody holds are assigned.
    """
    conn = s.connection()
    tenants = conn.execute(text(q.UNHELD_TENANTS_SQL)).scalars().all()
    out = {"agencies": 0, "collectors": 0}
    for t in tenants:
        agencies = conn.execute(text(q.AGENCIES_SQL), {"t": t}).all()
        if any(r and r > 0 for _, r in agencies):  # the outsourced buckets matter only to an agency with room
            _outsourced(s, conn, t, buckets)
            out["agencies"] += _fill(conn, t, agencies, agency=True, as_of=as_of)
            q.temp_table(conn, "q_out")
        collectors = conn.execute(text(q.COLLECTORS_SQL), {"t": t}).all()
        out["collectors"] += _fill(conn, t, collectors, agency=False, as_of=as_of)
    return {"assigned": out}


def _outsourced(s: Session, conn: Connection, tenant_id: int, buckets: Any) -> None:
    """Fill ``q_out`` with the (jurisdiction, bucket) pairs the tenant's strategies outsource."""
    q.temp_table(conn, "q_out", "jurisdiction VARCHAR(2), bucket VARCHAR(8)")
    rows = []
    for (j,) in conn.execute(text("SELECT DISTINCT b.jurisdiction FROM collection_case c JOIN borrower b "
                                  "ON b.id = c.borrower_id WHERE c.tenant_id = :t AND c.status = 'open'"),
                             {"t": tenant_id}):
        try:
            spec = strategy_for(s, tenant_id=tenant_id, jurisdiction=j)
            rows += [{"j": j, "b": b} for b in outsourced_buckets(spec, buckets)]
        except CollectguardError:
            continue  # no usable strategy: nothing is outsourced for it
    if rows:
        conn.execute(text("INSERT INTO q_out (jurisdiction, bucket) VALUES (:j, :b)"), rows)


def _fill(conn: Connection, tenant_id: int, holders: list[tuple[int, int]], *, agency: bool,
          as_of: dt.date) -> int:
    free = [(h, int(r)) for h, r in holders if r and r > 0]
    if not free:
        return 0
    q.temp_table(conn, "q_rank", "case_id BIGINT PRIMARY KEY, rnk INTEGER")
    conn.execute(text(q.RANK_AGENCY_SQL if agency else q.RANK_COLLECTOR_SQL), {"t": tenant_id})
    wanted = conn.execute(text("SELECT COUNT(*) FROM q_rank")).scalar_one()
    slots: list[int] = []
    turn = 0
    while len(slots) < wanted and any(r > turn for _, r in free):  # holders take turns up to capacity
        slots += [h for h, r in free if r > turn][: wanted - len(slots)]
        turn += 1
    q.temp_table(conn, "q_holder", "rnk INTEGER PRIMARY KEY, holder BIGINT")
    conn.execute(text("INSERT INTO q_holder (rnk, holder) VALUES (:r, :h)"),
                 [{"r": n, "h": h} for n, h in enumerate(slots, 1)])
    for stmt in (q.HAND_OUT_AGENCY_SQL if agency else q.HAND_OUT_COLLECTOR_SQL):
        conn.execute(q.dated(stmt), {"t": tenant_id, "d": as_of})
    for name in ("q_rank", "q_holder"):
        q.temp_table(conn, name)
    return len(slots)


# ---------------------------------------------------------------- holders, recall, listing

def collector_capacity_set(s: Session, *, tenant_id: int, user_id: int, capacity: int, active: bool = True,
                           actor: str, now: dt.datetime) -> None:
    """Set how many open cases a collector of ``tenant_id`` can hold (audited)."""
    _capacity_ok(capacity)
    user = s.get(User, user_id)
    if user is None or user.tenant_id != tenant_id:
        raise NotFound("no such user")
    row = s.get(CollectorCapacity, user_id) or CollectorCapacity(user_id=user_id, tenant_id=tenant_id)
    row.capacity, row.active = capacity, active
    s.add(row)
    audit_append(s, tenant_id=tenant_id, actor=actor, action="collector.capacity", subject=f"user:{user_id}",
                 payload={"capacity": capacity, "active": active}, now=now)


def agency_contract_set(s: Session, *, tenant_id: int, agency_tenant_id: int, capacity: int,
                        processing_contract: bool, active: bool = True, actor: str,
                        now: dt.datetime) -> AgencyContract:
    """Record the lender's contract with an agency: capacity, PIPL art. 21 contract (audited)."""
    _capacity_ok(capacity)
    agency = s.get(Tenant, agency_tenant_id)
    if agency is None or agency.kind != "agency":
        raise NotFound("no such agency")
    row = s.scalar(select(AgencyContract).where(AgencyContract.lender_tenant_id == tenant_id,
                                                AgencyContract.agency_tenant_id == agency_tenant_id))
    if row is None:
        row = AgencyContract(lender_tenant_id=tenant_id, agency_tenant_id=agency_tenant_id, created_at=now)
    row.capacity, row.processing_contract, row.active = capacity, processing_contract, active
    s.add(row)
    s.flush()
    audit_append(s, tenant_id=tenant_id, actor=actor, action="agency.contract",
                 subject=f"tenant:{agency_tenant_id}", now=now,
                 payload={"capacity": capacity, "processing_contract": processing_contract, "active": active})
    return row


def case_outsourcing_notified(s: Session, *, tenant_id: int, case_id: int, on: dt.date, actor: str,
                              now: dt.datetime) -> None:
    """Record that the borrower was told on ``on`` that the case's agency collects for the lender."""
    case = _case(s, tenant_id, case_id)
    held = s.scalar(select(CaseAssignment).where(CaseAssignment.case_id == case.id,
                                                 CaseAssignment.ended_on.is_(None),
                                                 CaseAssignment.agency_tenant_id.is_not(None)))
    if held is None:
        raise Conflict("the case is not with an agency")
    held.borrower_notified_on = on
    audit_append(s, tenant_id=tenant_id, actor=actor, action="case.outsourcing_notified",
                 subject=f"case:{case.id}",
                 payload={"borrower_id": case.borrower_id, "agency_tenant_id": held.agency_tenant_id,
                          "on": on.isoformat()}, now=now)


def case_recall(s: Session, *, tenant_id: int, agency_tenant_id: int, case_ids: list[int] | None = None,
                on: dt.date, actor: str, now: dt.datetime) -> dict[str, Any]:
    """Take cases (all, or ``case_ids``) back from an agency: its assignment ends, its planned work
    items from ``on`` are cancelled, and the cases go back to the lender's pool (audited)."""
    held = select(Case.id).where(Case.tenant_id == tenant_id, Case.agency_tenant_id == agency_tenant_id,
                                 Case.status == "open")
    if case_ids is not None:
        held = held.where(Case.id.in_(case_ids))
    ids = list(s.scalars(held))
    if ids:
        s.execute(update(CaseAssignment).where(CaseAssignment.case_id.in_(ids),
                                               CaseAssignment.ended_on.is_(None),
                                               CaseAssignment.agency_tenant_id == agency_tenant_id)
                  .values(ended_on=on, end_reason="recalled"))
        s.execute(update(Case).where(Case.id.in_(ids)).values(agency_tenant_id=None))
        s.execute(update(WorkItem).where(WorkItem.case_id.in_(ids), WorkItem.as_of >= on,
                                         WorkItem.status == "planned").values(status="cancelled"))
    audit_append(s, tenant_id=tenant_id, actor=actor, action="case.recall",
                 subject=f"tenant:{agency_tenant_id}",
                 payload={"case_ids": ids, "on": on.isoformat()}, now=now)
    return {"recalled": len(ids), "case_ids": ids}


def queue_list(s: Session, *, tenant_id: int, as_of: dt.date, assignee_user_id: int | None = None,
               agency_tenant_id: int | None = None, limit: int = 100,
               offset: int = 0) -> list[dict[str, Any]]:
    """The planned work items of a day for a tenant (or one collector / agency), by planned time."""
    stmt = select(WorkItem).where(WorkItem.as_of == as_of, WorkItem.status == "planned")
    if agency_tenant_id is not None:  # an agency sees only what it holds, whichever lender it is for
        stmt = stmt.where(WorkItem.agency_tenant_id == agency_tenant_id)
    else:
        stmt = stmt.where(WorkItem.tenant_id == tenant_id)
    if assignee_user_id is not None:
        stmt = stmt.where(WorkItem.assignee_user_id == assignee_user_id)
    cols = ("id", "case_id", "loan_id", "contact_id", "step", "channel", "recipient_role", "purpose",
            "template", "language", "local_time", "timezone", "planned_at", "assignee_user_id",
            "agency_tenant_id", "pack")
    rows = s.scalars(stmt.order_by(WorkItem.planned_at, WorkItem.id).limit(min(limit, 1000)).offset(offset))
    return [{c: getattr(w, c) for c in cols} for w in rows]


def _capacity_ok(capacity: int) -> None:
    if not 0 <= capacity <= 1_000_000:
        raise BadInput("capacity is 0–1000000 open cases", field="capacity")


def _case(s: Session, tenant_id: int, case_id: int) -> Case:
    case = s.get(Case, case_id)
    if case is None or case.tenant_id != tenant_id:
        raise NotFound("no such case")
    return case
