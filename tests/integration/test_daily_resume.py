"""Idempotence and resumability of the daily run: reruns change nothing, a crash in any stage is
finished by the next run with the same result as a run that never crashed."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from test_daily_seed import D, random_portfolio, seed, semantic_snapshot, snapshot, without_seconds

from collectguard.services.daily import STAGES, daily_run
from collectguard.services.outcomes import ptp_create


class Crash(RuntimeError):
    pass


def _world(c):
    """A random portfolio with cases, one of them with a promise falling due before the next day."""
    ids = seed(c, random_portfolio(random.Random(7), 120))
    daily_run(c, as_of=D - dt.timedelta(days=1))
    from sqlalchemy import select

    from collectguard.adapters.db.models import Case

    with c.uow() as s:
        case = s.scalars(select(Case).where(Case.status == "open").order_by(Case.id)).first()
        ptp_create(
            s,
            tenant_id=case.tenant_id,
            case_id=case.id,
            promised_on=D - dt.timedelta(days=3),
            due_date=D - dt.timedelta(days=1),
            amount="10",
            actor="test",
            now=c.clock(),
        )
    return ids


def test_a_rerun_changes_nothing(container):
    _world(container)
    first = daily_run(container, as_of=D)
    before = snapshot(container)
    again = daily_run(container, as_of=D)
    assert again == first
    assert snapshot(container) == before


def test_a_forced_rerun_writes_the_same_rows(container):
    _world(container)
    first = daily_run(container, as_of=D)
    tables = ("loan", "bucket_history", "collection_case", "ptp", "work_item", "case_assignment")
    before = snapshot(container, tables)
    again = daily_run(container, as_of=D, force=True)
    assert snapshot(container, tables) == before  # same rows, same ids: every statement is idempotent
    assert without_seconds(again) == {**without_seconds(first), "ptp": again["ptp"]}
    assert again["ptp"]["open"] == first["ptp"]["open"]


@pytest.mark.parametrize("stage", STAGES)
def test_a_crash_in_any_stage_is_finished_by_the_next_run(container, stage):
    _world(container)
    conn = container.connection
    # The reference: a run that never crashed, then rolled back to before it.
    clean_point = conn.begin_nested()
    clean = daily_run(container, as_of=D)
    reference = semantic_snapshot(container)
    clean_point.rollback()

    def hook(name):
        if name == stage:
            raise Crash(name)

    with pytest.raises(Crash):
        daily_run(container, as_of=D, stage_hook=hook)
    half = semantic_snapshot(container)
    assert ("2026-04-07", "running") in [(str(d), s) for d, s in half["daily_run"]]
    resumed = daily_run(container, as_of=D)
    assert semantic_snapshot(container) == reference
    assert without_seconds(resumed) == without_seconds(clean)


def test_only_the_unfinished_stages_run_again(container, monkeypatch):
    _world(container)
    with pytest.raises(Crash):
        daily_run(
            container, as_of=D, stage_hook=lambda n: (_ for _ in ()).throw(Crash()) if n == "queue" else None
        )
    import collectguard.services.daily as daily_mod

    calls = []
    real = daily_mod._positions
    monkeypatch.setattr(daily_mod, "_positions", lambda *a, **k: calls.append("positions") or real(*a, **k))
    daily_run(container, as_of=D)
    assert calls == []  # positions were committed before the crash and are not redone
