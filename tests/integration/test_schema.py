"""The migrations build the whole model on both backends, and Money/Rate round-trip exactly."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import inspect, select

from collectguard.adapters.db.models import Base, Borrower, Loan, Tenant
from collectguard.services.audit import audit_append


def test_every_model_table_exists(database):
    with database.engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
    assert set(Base.metadata.tables) <= tables


def test_money_and_rate_round_trip_exactly(container):
    now = dt.datetime(2026, 4, 7, tzinfo=dt.UTC)
    with container.uow() as s:
        t = Tenant(code="t1", name="T1", kind="lender", created_at=now)
        s.add(t)
        s.flush()
        b = Borrower(tenant_id=t.id, ext_id="B1", name_enc=b"x", phone_enc=b"x", phone_hmac="h",
                     jurisdiction="CN", timezone="Asia/Shanghai", language="zh-CN", created_at=now)
        s.add(b)
        s.flush()
        s.add(Loan(tenant_id=t.id, ext_id="L1", borrower_id=b.id, lender_type="private",
                   principal=Decimal("12345678.91"), currency="CNY", annual_rate=Decimal("23.9999"),
                   upfront_fees=Decimal("0.10"), disbursed_on=dt.date(2026, 1, 1),
                   lpr_at_signing=Decimal("3.45"), created_at=now))
    with container.uow(write=False) as s:
        loan = s.scalars(select(Loan)).one()
        assert loan.principal == Decimal("12345678.91")
        assert loan.annual_rate == Decimal("23.9999")
        assert loan.lpr_at_signing == Decimal("3.45")
        assert loan.upfront_fees == Decimal("0.10")


def test_savepoint_isolation_leaves_no_rows_behind(container):
    # Paired with the test above: each test starts from an empty database.
    with container.uow(write=False) as s:
        assert s.scalars(select(Loan)).first() is None


def test_audit_chain_links_records(container):
    now = dt.datetime(2026, 4, 7, tzinfo=dt.UTC)
    with container.uow() as s:
        a = audit_append(s, tenant_id=None, actor="test", action="x", subject="s", payload={"a": 1}, now=now)
        b = audit_append(s, tenant_id=None, actor="test", action="y", subject="s", payload={"b": "中"}, now=now)
    assert (a.seq, b.seq) == (1, 2)
    assert b.prev_hash == a.hash and a.prev_hash == "0" * 64
