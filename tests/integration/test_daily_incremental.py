"""Incremental daily runs equal full recomputations, day after day, on SQLite and PostgreSQL.

On PostgreSQL a run after the first derives in full only the loans whose installments or payments
changed (``loan_change``), whose next event came, that are new or under a plan, and ages the other
overdue loans (services/daily_pg.py); SQLite skips loans it found closed. Each day here, after
random changes of the kinds the ledger sees (payments dated today, earlier or later; lump, partial
and over-payments; new installments; waived and moved dues), the run's result is compared with
``--force`` (every loan computed again) and with the domain oracle.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text
from test_daily_seed import D, LoanSpec, oracle, random_portfolio, seed

from collectguard.adapters.db.models import DailyRun
from collectguard.services.daily import daily_run

CENT = Decimal("0.01")


def _state(c: Any, day: dt.date) -> dict[str, Any]:
    """Everything the positions and cases stages write, as plain values."""
    with c.uow(write=False) as s:
        conn = s.connection()
        loans = conn.execute(
            text(
                "SELECT id, dpd, bucket, outstanding, overdue_amount, debt_status, as_of, "
                "next_event_on FROM loan ORDER BY id"
            )
        ).all()
        history = conn.execute(
            text("SELECT loan_id, as_of, from_bucket, to_bucket FROM bucket_history ORDER BY loan_id, as_of")
        ).all()
        cases = conn.execute(
            text(
                "SELECT loan_id, status, bucket, dpd, opened_on, closed_on, close_reason "
                "FROM collection_case ORDER BY id"
            )
        ).all()
    return {
        "loans": [tuple(r) for r in loans],
        "history": [tuple(r) for r in history],
        "cases": [tuple(r) for r in cases],
    }


def _mode(c: Any, day: dt.date) -> str | None:
    with c.uow(write=False) as s:
        summary = s.scalar(select(DailyRun.summary).where(DailyRun.as_of == day))
    return summary["stages"]["positions"].get("mode")


def _change(rng: random.Random, c: Any, ids: list[int], specs: list[LoanSpec], day: dt.date) -> None:
    """Between two runs: what payments, imports, waivers and extensions do to the ledger (in SQL, as
    the services write it), mirrored into the specs the oracle reads."""
    with c.uow() as s:
        conn = s.connection()
        for _ in range(rng.randint(3, 12)):
            n = rng.randrange(len(ids))
            lid, spec = ids[n], specs[n]
            kind = rng.random()
            unpaid = sum((p + i + f for _q, _d, p, i, f in spec.installments), Decimal(0))
            if kind < 0.45:  # a payment: today, back-dated, or dated after the run's date
                when = day + dt.timedelta(days=rng.choice([0, 0, -1, -4, -20, 1, 3]))
                share = rng.choice([Decimal("0.1"), Decimal("0.35"), Decimal(1), Decimal("1.2")])
                amount = max(CENT, (unpaid * share).quantize(CENT)) if unpaid else Decimal("12.34")
                conn.execute(
                    text("INSERT INTO payment (loan_id, paid_on, amount, created_at) VALUES (:l, :d, :a, :t)"),
                    {"l": lid, "d": when, "a": int(amount * 100), "t": dt.datetime(2026, 1, 1)},
                )
                spec.payments.append((when, amount))
            elif kind < 0.65:  # a new installment (an import), due soon or already past
                seq = 100 + len(spec.installments)
                due = day + dt.timedelta(days=rng.choice([-10, -1, 0, 1, 2, 15, 40]))
                amount = Decimal(rng.randint(100, 20000)) / 100
                conn.execute(
                    text(
                        "INSERT INTO installment (loan_id, seq, due_date, principal_due, interest_due, "
                        "fee_due) VALUES (:l, :q, :d, :a, 0, 0)"
                    ),
                    {"l": lid, "q": seq, "d": due, "a": int(amount * 100)},
                )
                spec.installments.append((seq, due, amount, Decimal(0), Decimal(0)))
            elif spec.installments and kind < 0.85:  # a waiver lowers one installment's principal
                k = rng.randrange(len(spec.installments))
                q, due, p, i, f = spec.installments[k]
                lower = (p * rng.choice([Decimal(0), Decimal("0.5")])).quantize(CENT)
                conn.execute(
                    text("UPDATE installment SET principal_due = :p WHERE loan_id = :l AND seq = :q"),
                    {"p": int(lower * 100), "l": lid, "q": q},
                )
                spec.installments[k] = (q, due, lower, i, f)
            elif spec.installments:  # an extension moves the installments due from one on by some days
                k = rng.randrange(len(spec.installments))
                shift = rng.choice([5, 30])
                q0, d0 = spec.installments[k][0], spec.installments[k][1]
                moved = [
                    (q, d + dt.timedelta(days=shift) if d >= d0 else d, p, i, f) for q, d, p, i, f in spec.installments
                ]
                later = (
                    "due_date + CAST(:n AS INTEGER)"
                    if conn.dialect.name == "postgresql"
                    else "date(due_date, '+' || :n || ' days')"
                )
                conn.execute(
                    text(
                        f"UPDATE installment SET due_date = {later} WHERE loan_id = :l AND due_date >= "
                        "(SELECT due_date FROM installment WHERE loan_id = :l AND seq = :q)"
                    ),
                    {"n": shift, "l": lid, "q": q0},
                )
                spec.installments[:] = moved


def _check_oracle(c: Any, ids: list[int], specs: list[LoanSpec], day: dt.date) -> None:
    with c.uow(write=False) as s:
        rows = {
            r[0]: r[1:]
            for r in s.connection().execute(text("SELECT id, bucket, dpd, outstanding, overdue_amount FROM loan"))
        }
    for lid, spec in zip(ids, specs, strict=True):
        want = oracle(spec, day)
        if want is None:
            continue
        got = rows[lid]
        assert (got[0], got[1]) == (want.bucket, want.dpd), (day, lid, spec)
        assert (Decimal(got[2]) / 100, Decimal(got[3]) / 100) == (want.outstanding, want.overdue_amount), (day, lid)


def _date(value: Any) -> dt.date | None:
    """A DATE column's value (SQLite gives ISO text)."""
    return None if value is None else dt.date.fromisoformat(str(value))


def _check_cases(c: Any, day: dt.date) -> None:
    """The cases stage against the ledger: one open case per loan past due (debt valid), following
    its loan's bucket and DPD; the cases closed today closed as paid or cured from their loan."""
    with c.uow(write=False) as s:
        conn = s.connection()
        loans = {r[0]: r[1:] for r in conn.execute(text("SELECT id, bucket, dpd, debt_status, disbursed_on FROM loan"))}
        cases = conn.execute(
            text("SELECT loan_id, status, bucket, dpd, closed_on, close_reason, paused_reason FROM collection_case")
        ).all()
    open_ = [r for r in cases if r.status == "open"]
    assert len({r.loan_id for r in open_}) == len(open_)
    for r in open_:
        bucket, dpd, _status, _on = loans[r.loan_id]
        assert (r.bucket, r.dpd) == (bucket, dpd), (day, r)
        assert bucket not in ("M0", "closed") or r.paused_reason == "payment_plan", (day, r)
    past_due = {
        lid
        for lid, (b, _d, st, on) in loans.items()
        if _date(on) <= day and st == "valid" and b not in ("M0", "closed")
    }
    assert past_due == {r.loan_id for r in open_}, day
    for r in cases:
        if r.status == "closed" and _date(r.closed_on) == day:
            bucket = loans[r.loan_id][0]
            assert (r.bucket, r.close_reason) == (bucket, "paid" if bucket == "closed" else "cured"), (day, r)


@pytest.mark.parametrize("seed_value", [21, 22, 23, 24])
def test_each_day_equals_a_full_recomputation(container, seed_value):
    rng = random.Random(seed_value)
    specs = random_portfolio(rng, 90)
    ids = seed(container, specs)
    day = D - dt.timedelta(days=45)
    for step in range(7):
        if step:
            _change(rng, container, ids, specs, day)
        if step in (2, 4):  # loans imported between runs (some disbursed before the last run, some later)
            more = random_portfolio(rng, 4)
            ids += seed(container, more, tenant_code=f"lender-{step}")
            specs += more
        summary = daily_run(container, as_of=day)
        if step and container.engine.dialect.name == "postgresql":
            assert _mode(container, day) == "incremental"
        _check_oracle(container, ids, specs, day)
        _check_cases(container, day)
        incremental = _state(container, day)
        again = daily_run(container, as_of=day, force=True)
        assert _state(container, day) == incremental, (seed_value, day)
        assert again["buckets"] == summary["buckets"]
        day += dt.timedelta(days=rng.choice([1, 1, 2, 5, 31]))


def test_a_day_with_no_changes_derives_only_overdue_loans(container):
    """The next day with nothing new: overdue loans age, everything else is left as it is."""
    rng = random.Random(5)
    specs = random_portfolio(rng, 60)
    seed(container, specs)
    daily_run(container, as_of=D)
    with container.uow(write=False) as s:
        overdue = s.scalar(text("SELECT COUNT(*) FROM loan WHERE dpd > 0"))
        due_tomorrow = s.scalar(
            text("SELECT COUNT(*) FROM loan WHERE next_event_on <= :d"), {"d": D + dt.timedelta(days=1)}
        )
    daily_run(container, as_of=D + dt.timedelta(days=1))
    with container.uow(write=False) as s:
        stage = s.scalar(select(DailyRun.summary).where(DailyRun.as_of == D + dt.timedelta(days=1)))["stages"]
    if container.engine.dialect.name == "postgresql":
        assert stage["positions"]["mode"] == "incremental"
        assert stage["positions"]["derived"] <= due_tomorrow  # only loans whose calendar moved were read
        assert stage["positions"]["rederived"] >= overdue > 0


@pytest.mark.postgres
def test_the_change_journal_survives_a_crashed_run(container):
    """A payment journalled before a run that crashes in its positions stage still counts on the rerun."""
    if container.engine.dialect.name != "postgresql":
        pytest.skip("the journal is PostgreSQL's")
    spec = LoanSpec(
        disbursed_on=D - dt.timedelta(days=90),
        installments=[(1, D - dt.timedelta(days=10), Decimal(100), Decimal(0), Decimal(0))],
    )
    (lid,) = seed(container, [spec])
    daily_run(container, as_of=D)
    with container.uow() as s:
        s.execute(
            text("INSERT INTO payment (loan_id, paid_on, amount, created_at) VALUES (:l, :d, 10000, :t)"),
            {"l": lid, "d": D - dt.timedelta(days=20), "t": dt.datetime(2026, 1, 1)},
        )  # back-dated
        assert s.scalar(text("SELECT COUNT(*) FROM loan_change WHERE loan_id = :l"), {"l": lid}) == 1

    def crash(stage: str) -> None:
        if stage == "positions":
            raise RuntimeError("killed")

    tomorrow = D + dt.timedelta(days=1)
    with pytest.raises(RuntimeError):
        daily_run(container, as_of=tomorrow, stage_hook=crash)
    daily_run(container, as_of=tomorrow)
    with container.uow(write=False) as s:
        row = s.execute(text("SELECT bucket, dpd, outstanding FROM loan WHERE id = :l"), {"l": lid}).one()
        assert tuple(row) == ("closed", 0, 0)
        assert s.scalar(text("SELECT COUNT(*) FROM loan_change")) == 0
