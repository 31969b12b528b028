"""Recovery analytics: roll rates, cure rate, PTP-kept rate, recovered amount by holder; the route."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select
from test_daily_seed import NOW, D, seed, simple_loan, tenant

from collectguard.adapters.db.models import Case, Payment, User
from collectguard.api.app import create_app
from collectguard.services import accounts, queue
from collectguard.services.analytics import recovery_analytics
from collectguard.services.daily import daily_run
from collectguard.services.outcomes import ptp_create

DAY = dt.timedelta(days=1)


class AllowAll:
    def check(self, event):
        from collectguard.domain.event import Decision

        return Decision(verdict="allow", pack="TEST", pack_version="1")


def _world(c):
    """Day 1: five loans past due (one collector holds the three worst). Day 2: one rolls to M2, two
    are cured (one by a kept promise), one is paid off, one promise is broken."""
    ids = seed(
        c,
        [simple_loan(overdue_days=d, borrower=n) for n, d in enumerate((30, 3, 3, 10, 12))]
        + [simple_loan(borrower=5)],
    )
    with c.uow() as s:
        t = tenant(s)
        u = User(tenant_id=t.id, username="zhang", password_hash="x", role="collector", created_at=NOW)
        s.add(u)
        s.flush()
        queue.collector_capacity_set(s, tenant_id=t.id, user_id=u.id, capacity=3, actor="t", now=NOW)
    daily_run(c, as_of=D, guard=AllowAll())
    with c.uow() as s:
        cases = {x.loan_id: x for x in s.scalars(select(Case))}
        for lid, due in ((ids[3], D), (ids[4], D)):
            ptp_create(
                s,
                tenant_id=t.id,
                case_id=cases[lid].id,
                promised_on=D,
                due_date=due,
                amount="100",
                actor="t",
                now=NOW,
            )
        s.execute(
            insert(Payment),
            [
                {"loan_id": ids[1], "paid_on": D, "amount": Decimal("100"), "created_at": NOW},  # cured
                {
                    "loan_id": ids[2],
                    "paid_on": D + DAY,
                    "amount": Decimal("600"),
                    "created_at": NOW,
                },  # paid off
                {"loan_id": ids[3], "paid_on": D, "amount": Decimal("100"), "created_at": NOW},  # PTP kept
            ],
        )
    daily_run(c, as_of=D + DAY, guard=AllowAll())
    return ids, t, u


def test_recovery_figures(container):
    _ids, t, u = _world(container)
    with container.uow(write=False) as s:
        out = recovery_analytics(s, tenant_id=t.id, date_from=D, date_to=D + DAY)
    # Day 1 is every loan's first run (its baseline); day 2: one M1 -> M2, two M1 -> M0, one -> closed.
    m1 = out["roll_rates"]["M1"]
    assert m1["exposure"] == 5
    assert {k: v["loans"] for k, v in m1["to"].items()} == {"M0": 2, "M2": 1, "closed": 1}
    assert m1["to"]["M2"]["rate"] == 0.2
    assert out["exposure"] == {"M1": 5, "M0": 3, "M2": 1, "closed": 1}
    assert (out["cases"], out["cured"], out["paid"], out["cure_rate"]) == (5, 2, 1, 0.4)
    assert out["ptp"] == {"kept": 1, "partial": 0, "broken": 1, "kept_rate": 0.5}
    assert out["recovered"] == "800.00"
    (mine,) = out["by_collector"]
    assert (mine["user_id"], mine["cases"], mine["cured"]) == (u.id, 3, 1)
    # The collector held the three worst (DPD 30, 12, 10): the kept promise and its 100 are theirs.
    assert (mine["ptp"]["kept"], mine["recovered"]) == (1, "100.00")
    assert out["by_agency"] == []


def test_a_range_backwards_is_refused(container):
    from collectguard.errors import BadInput

    with container.uow(write=False) as s, pytest.raises(BadInput):
        recovery_analytics(s, tenant_id=1, date_from=D, date_to=D - DAY)


def test_the_route_needs_a_token_and_a_permission(container):
    _ids, t, _u = _world(container)
    with container.uow() as s:
        _row, lead = accounts.token_create(s, tenant_code=t.code, role="team_lead", actor="t", now=NOW)
        _row, collector = accounts.token_create(s, tenant_code=t.code, role="collector", actor="t", now=NOW)
    client = TestClient(create_app(container))
    url = f"/api/v1/analytics/recovery?from={D}&to={D + DAY}"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": f"Bearer {collector}"}).status_code == 403
    r = client.get(url, headers={"Authorization": f"Bearer {lead}"})
    assert r.status_code == 200, r.text
    assert r.json()["recovered"] == "800.00"
    bad = client.get(
        f"/api/v1/analytics/recovery?from={D}&to=yesterday", headers={"Authorization": f"Bearer {lead}"}
    )
    assert bad.status_code == 422
    summary = client.get(f"/api/v1/daily/{D + DAY}", headers={"Authorization": f"Bearer {lead}"})
    assert summary.status_code == 200 and summary.json()["loans"] == 6
