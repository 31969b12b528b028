"""The cost stage's bulk reads and writes (``services/costs_sql``) on both backends: every read path
(SQLite's table scan and index walk, PostgreSQL's binary COPY), several windows in the pipeline,
the write of values that do not fit SQLite's fixed-width cells, and SQLite's fallback for dates
stored in another shape all store the scalar Appendix J APR."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import text
from test_costs import START, _apr, _loan, _monthly, _scalar

from collectguard.domain.apr import add_months
from collectguard.services import costs, costs_sql
from collectguard.services.costs import loan_apr_fill, loan_apr_run


def _portfolio(c) -> dict[int, tuple[str, str, list[tuple[dt.date, str]]]]:
    """Loans of every schedule shape the matrix method distinguishes, and two it leaves to the
    scalar method (equal due dates; payments below the amount financed: a negative APR)."""
    month_end = [(add_months(dt.date(2025, 1, 31), k), "1900") for k in range(6)]  # Feb 28, Mar 31, ...
    shapes = {
        "monthly": ("10000", "500", _monthly(12, "950", day=25)),
        "month ends": ("10000", "0", month_end),
        "weekly": ("3000", "300", [(START + dt.timedelta(days=7 * k), "420") for k in range(1, 9)]),
        "biweekly": ("3000", "0", [(START + dt.timedelta(days=14 * k + 3), "560") for k in range(1, 7)]),
        "daily": ("500", "50", [(START + dt.timedelta(days=k), "26") for k in range(1, 21)]),
        "single": ("1000", "300", [(START + dt.timedelta(days=7), "1000")]),
        "odd first period": ("8000", "800", [(add_months(dt.date(2025, 2, 28), k), "1500") for k in range(6)]),
        "irregular": (
            "4000",
            "0",
            [(START + dt.timedelta(days=d), a) for d, a in ((9, "900"), (40, "1300"), (95, "2400"))],
        ),
        "equal due dates": ("2000", "0", [(START + dt.timedelta(days=30), "1100")] * 2),
        "below financed": ("5000", "0", _monthly(4, "1000")),
    }
    return {_loan(c, principal=p, fees=f, schedule=sched): (p, f, sched) for p, f, sched in shapes.values()}


@pytest.mark.parametrize("dense_share", [0.0, 2.0], ids=["table-scan", "index-walk"])
@pytest.mark.parametrize("chunk", [3, 10_000], ids=["windows-of-3", "one-window"])
def test_every_read_path_and_window_size_stores_the_scalar_apr(container, monkeypatch, dense_share, chunk):
    monkeypatch.setattr(costs_sql, "DENSE_SHARE", dense_share)  # SQLite only: PostgreSQL has one read
    monkeypatch.setitem(costs.CHUNK, "sqlite", chunk)
    monkeypatch.setitem(costs.CHUNK, "postgresql", chunk)
    loans = _portfolio(container)
    nothing = _loan(container, schedule=[])
    counts = loan_apr_run(container)
    assert counts == {"loans": len(loans), "vectorised": len(loans) - 2, "scalar": 2, "unavailable": 0}
    for lid, (p, f, sched) in loans.items():
        assert float(_apr(container, lid)) == pytest.approx(_scalar(p, f, sched), abs=0.0051), (lid, sched)
    negative = next(lid for lid, (_, _, sched) in loans.items() if sched == _monthly(4, "1000"))
    assert _apr(container, negative) < 0  # written outside SQLite's fixed-width cells, one by one
    assert _apr(container, nothing) is None
    assert loan_apr_run(container)["loans"] == 0


@pytest.mark.parametrize("dense_share", [0.0, 2.0], ids=["table-scan", "index-walk"])
def test_only_the_lender_types_asked_for_are_priced(container, monkeypatch, dense_share):
    monkeypatch.setattr(costs_sql, "DENSE_SHARE", dense_share)
    private = _loan(container, lender_type="private", principal="10000", fees="2000", schedule=_monthly(12, "1000"))
    licensed = _loan(container, principal="10000", fees="2000", schedule=_monthly(12, "1000"))
    with container.uow() as s:
        counts = loan_apr_fill(s, lender_types=("private",))
    assert counts["loans"] == 1 and _apr(container, private) is not None and _apr(container, licensed) is None


@pytest.mark.parametrize("advance_text", ["2025-01-10 00:00:00", None], ids=["julianday", "ten-characters"])
def test_a_date_stored_in_another_shape_is_read_by_sqlite_itself(container, advance_text):
    sched = _monthly(6, "1800", day=5)
    lid = _loan(container, principal="10000", fees="1000", schedule=sched)
    odd = _loan(container, principal="10000", fees="1000", schedule=sched)
    other = _loan(container, principal="10000", fees="1000", schedule=sched)
    with container.uow() as s:
        if s.get_bind().dialect.name != "sqlite":
            pytest.skip("PostgreSQL stores dates as dates")
        # Legal for SQLite, not the ten-character text the bulk read decodes: the window falls back
        # to julianday (installments; disbursement dates when one of them is longer) ...
        s.execute(text("UPDATE installment SET due_date = due_date || ' 00:00:00' WHERE loan_id = :id"), {"id": lid})
        if advance_text is not None:
            s.execute(text("UPDATE loan SET disbursed_on = :d WHERE id = :id"), {"d": advance_text, "id": other})
        # ... and a date neither reads (the ISO week date of 2025-01-10, ten characters, which
        # Python reads) goes to the scalar method.
        s.execute(text("UPDATE loan SET disbursed_on = '2025-W02-5' WHERE id = :id"), {"id": odd})
    counts = loan_apr_run(container)
    assert counts == {"loans": 3, "vectorised": 2, "scalar": 1, "unavailable": 0}
    with container.uow(write=False) as s:  # raw: the ORM itself cannot load the longer date
        stored = dict(
            s.execute(text("SELECT id, apr FROM loan WHERE id IN (:a, :b, :c)"), {"a": lid, "b": odd, "c": other}).all()
        )
    assert set(stored) == {lid, odd, other}
    for apr in stored.values():
        assert apr / 10_000 == pytest.approx(_scalar("10000", "1000", sched), abs=0.0051)


def test_the_blob_cells_round_trip_every_width():
    # The SQLite write encodes stored APRs (percent x 10,000) as fixed-width digits; the largest that
    # fits and the smallest have to come back as themselves.
    import numpy as np

    values = np.array([0, 1, 123456, 10**costs_sql._CELL - 1], dtype=np.int64)
    digits = values[:, None] // 10 ** np.arange(costs_sql._CELL - 1, -1, -1, dtype=np.int64) % 10
    assert [int(bytes((row + ord("0")).astype(np.uint8))) for row in digits] == values.tolist()


def test_an_installment_too_large_for_a_cell_is_still_priced(container):
    big = [(d, str(Decimal(a) * 10**7)) for d, a in _monthly(3, "4000")]
    lid = _loan(container, principal=str(10000 * 10**7), schedule=big)
    loan_apr_run(container)
    assert float(_apr(container, lid)) == pytest.approx(_scalar(str(10000 * 10**7), "0", big), abs=0.0051)


def test_installments_stored_out_of_loan_order_are_all_read(container, monkeypatch):
    # The table scan reads the rowid range of the window's first and last installment; one added
    # later (a rescheduled loan) lies beyond it, which the index count reveals: the whole table is read.
    from collectguard.adapters.db.models import Installment

    monkeypatch.setattr(costs_sql, "DENSE_SHARE", 0.0)
    sched = _monthly(6, "1800", day=5)
    early = _loan(container, principal="10000", fees="1000", schedule=sched[:4])
    later = _loan(container, principal="10000", fees="1000", schedule=sched)
    with container.uow() as s:
        for seq, (due, amount) in enumerate(sched[4:], start=5):
            s.add(
                Installment(
                    loan_id=early,
                    seq=seq,
                    due_date=due,
                    principal_due=Decimal(amount),
                    interest_due=Decimal(0),
                    fee_due=Decimal(0),
                )
            )
    assert loan_apr_run(container)["loans"] == 2
    expected = _scalar("10000", "1000", sched)
    assert float(_apr(container, early)) == pytest.approx(expected, abs=0.0051)
    assert _apr(container, early) == _apr(container, later)


def test_windows_shrink_to_keep_their_installments_bounded(container, monkeypatch):
    monkeypatch.setattr(costs_sql, "MAX_INSTALLMENTS", 7)  # the daily schedule alone has 20
    loans = _portfolio(container)
    with container.uow() as s:
        first = min(loans)
        assert costs_sql.window_end(s, first, first + 100, 100) < first + 100
        assert costs_sql.window_end(s, first, first + 100, 1) == first + 1
    counts = loan_apr_run(container)
    assert counts == {"loans": len(loans), "vectorised": len(loans) - 2, "scalar": 2, "unavailable": 0}
    for lid, (p, f, sched) in loans.items():
        assert float(_apr(container, lid)) == pytest.approx(_scalar(p, f, sched), abs=0.0051), (lid, sched)
