"""Every loan's true APR is computed by the daily run's cost stage, set-based, and equals the scalar
Appendix J answer; over-cap loans are listed with what may still be claimed."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from collectguard.adapters.db.models import Installment, Loan
from collectguard.domain.apr import Loan as AprLoan
from collectguard.domain.apr import Payment as AprPayment
from collectguard.domain.apr import add_months, compute_apr
from collectguard.errors import NotFound
from collectguard.services.authz import Principal
from collectguard.services.costs import loan_apr_run, loan_cost, loans_over_cap

START = dt.date(2025, 1, 10)


def _loan(c, *, tenant: str = "lender-1", principal: str = "10000", fees: str = "0", rate: str = "18",
          lender_type: str = "licensed_institution", schedule: list[tuple[dt.date, str]] | None = None,
          lpr: str | None = "3.45") -> int:
    from test_daily_seed import tenant as tenant_row

    from collectguard.adapters.db.models import Borrower

    with c.uow() as s:
        t = tenant_row(s, tenant)
        b = Borrower(tenant_id=t.id, ext_id=f"B{random.random()}", name_enc=b"x", phone_enc=b"x",
                     phone_hmac=f"h{random.random()}", jurisdiction="CN", timezone="Asia/Shanghai",
                     language="zh-CN", status="active", created_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        s.add(b)
        s.flush()
        ln = Loan(tenant_id=t.id, ext_id=f"L{random.random()}", borrower_id=b.id, product="cash",
                  lender_type=lender_type, principal=Decimal(principal), currency="CNY", annual_rate=Decimal(rate),
                  upfront_fees=Decimal(fees), disbursed_on=START, lpr_at_signing=None if lpr is None else Decimal(lpr),
                  created_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        s.add(ln)
        s.flush()
        for k, (due, amount) in enumerate(schedule or [], start=1):
            s.add(Installment(loan_id=ln.id, seq=k, due_date=due, principal_due=Decimal(amount),
                              interest_due=Decimal(0), fee_due=Decimal(0)))
        return ln.id


def _monthly(n: int, amount: str, *, day: int = 10) -> list[tuple[dt.date, str]]:
    first = dt.date(START.year, START.month, day) if day > START.day else add_months(START.replace(day=day), 1)
    return [(add_months(first, k), amount) for k in range(n)]


def _scalar(principal: str, fees: str, schedule: list[tuple[dt.date, str]]) -> float:
    return compute_apr(AprLoan(advance=Decimal(principal), advance_date=START, upfront_fees=Decimal(fees),
                               payments=tuple(AprPayment(d, Decimal(a)) for d, a in schedule))).apr


def _apr(c, loan_id: int) -> Decimal | None:
    with c.uow(write=False) as s:
        return s.get(Loan, loan_id).apr


def test_regular_and_irregular_schedules_get_the_scalar_apr_and_a_rerun_does_nothing(container):
    rng = random.Random(5)
    expected: dict[int, float] = {}
    for _ in range(25):  # regular: equal monthly installments on one day of the month
        n, amount = rng.randint(2, 24), str(rng.randint(300, 3000))
        principal, fees = str(rng.randint(2000, 20000)), str(rng.choice([0, 0, 100, 500, 1500]))
        sched = _monthly(n, amount, day=rng.randint(1, 28))
        if Decimal(fees) >= Decimal(principal) or sum(Decimal(a) for _, a in sched) <= Decimal(principal):
            continue
        lid = _loan(container, principal=principal, fees=fees, schedule=sched)
        expected[lid] = _scalar(principal, fees, sched)
    irregular = [(START + dt.timedelta(days=7), "700"), (START + dt.timedelta(days=14), "400")]
    weekly = _loan(container, principal="1000", fees="300", schedule=irregular)
    expected[weekly] = _scalar("1000", "300", irregular)
    uneven = [(d, str(900 + 50 * k)) for k, (d, _) in enumerate(_monthly(6, "0"))]
    lid = _loan(container, principal="5000", schedule=uneven)
    expected[lid] = _scalar("5000", "0", uneven)
    nothing = _loan(container, schedule=[])  # no schedule: no APR, and no error
    counts = loan_apr_run(container)
    assert counts["loans"] == len(expected)  # a loan without installments is not a candidate
    assert counts["vectorised"] >= len(expected) - 2 and counts["unavailable"] == 0
    for lid, apr in expected.items():
        assert float(_apr(container, lid)) == pytest.approx(apr, abs=0.005), lid
    assert _apr(container, weekly) > 100  # 30% upfront on a two-week loan
    assert _apr(container, nothing) is None
    assert loan_apr_run(container) == {"loans": 0, "vectorised": 0, "scalar": 0, "unavailable": 0}


def test_a_stored_apr_is_kept(container):
    lid = _loan(container, schedule=_monthly(6, "2000"))
    with container.uow() as s:
        s.execute(update(Loan).where(Loan.id == lid).values(apr=Decimal("12.5")))
    assert loan_apr_run(container)["loans"] == 0
    assert _apr(container, lid) == Decimal("12.5")


def _staff(c, tenant: str = "lender-1") -> Principal:
    with c.uow(write=False) as s:
        from collectguard.adapters.db.models import Tenant

        t = s.scalar(select(Tenant).where(Tenant.code == tenant))
        return Principal(tenant_id=t.id, tenant_code=tenant, role="compliance_officer", user_id=None,
                         token_id=None)


def test_over_cap_loans_are_listed_with_the_claimable_interest(container):
    # 10,000 lent with 2,000 upfront: the borrower gets 8,000 and repays 12 x 1,000 -> APR far above 13.8%.
    over = _loan(container, principal="10000", fees="2000", rate="12", lender_type="private",
                 schedule=_monthly(12, "1000"))
    illegal = _loan(container, principal="1000", fees="300", rate="10", lender_type="unlicensed",
                    schedule=[(START + dt.timedelta(days=7), "1000")])
    fine = _loan(container, principal="10000", rate="10", lender_type="private", schedule=_monthly(12, "880"))
    licensed = _loan(container, principal="10000", fees="2000", lender_type="licensed_institution",
                     schedule=_monthly(12, "1000"))
    _loan(container, tenant="lender-2", principal="10000", fees="2000", lender_type="private",
          schedule=_monthly(12, "1000"))
    loan_apr_run(container)
    p = _staff(container)
    listed = loans_over_cap(container, principal=p)["items"]
    assert [x["loan_id"] for x in listed] == [over, illegal]  # never the other tenant's, the fine or licensed
    o, i = listed
    assert o["status"] == "over_cap" and "CN:SPCLENDING:25" not in o["citations"]  # agreed 12% is under 13.8%
    assert "CN:SPCLENDING:29" in o["citations"] and Decimal(o["claimable_interest"]) < Decimal(o["charged"])
    assert Decimal(o["excess"]) > 0
    assert i["status"] == "illegal" and i["citations"][0] == "CN:ILL2019"
    assert loan_cost(container, principal=p, loan_id=fine)["status"] == "valid"
    assert loan_cost(container, principal=p, loan_id=licensed)["notes"][0]["rule"] == "cn.cost_cap.courts_may_adjust"
    with pytest.raises(NotFound):
        loan_cost(container, principal=_staff(container, "lender-2"), loan_id=over)
    page = loans_over_cap(container, principal=p, limit=1)
    assert [x["loan_id"] for x in page["items"]] == [over] and page["next_after_id"] == over
    rest = loans_over_cap(container, principal=p, after_id=over)
    assert [x["loan_id"] for x in rest["items"]] == [illegal] and rest["next_after_id"] is None


def test_the_api_answers_cost_and_over_cap_and_hides_other_tenants(container):
    from fastapi.testclient import TestClient

    from collectguard.api.app import create_app
    from collectguard.services import accounts

    over = _loan(container, principal="10000", fees="2000", rate="12", lender_type="private",
                 schedule=_monthly(12, "1000"))
    foreign = _loan(container, tenant="lender-2", principal="10000", fees="2000", lender_type="private",
                    schedule=_monthly(12, "1000"))
    loan_apr_run(container)
    with container.uow() as s:
        token = accounts.token_create(s, tenant_code="lender-1", role="compliance_officer", actor="t",
                                      now=container.clock())[1]
    client = TestClient(create_app(container))
    h = {"Authorization": f"Bearer {token}"}
    r = client.get(f"/api/v1/loans/{over}/cost", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "over_cap" and Decimal(r.json()["apr"]) > 40
    assert client.get(f"/api/v1/loans/{foreign}/cost", headers=h).status_code == 404
    assert client.get(f"/api/v1/loans/{over}/cost").status_code == 401
    listed = client.get("/api/v1/costs/over-cap", headers=h).json()
    assert [x["loan_id"] for x in listed["items"]] == [over]
    bad = client.get("/api/v1/costs/over-cap?limit=0", headers=h)
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")


def test_the_daily_run_prices_capped_loans_first_and_once(container):
    from collectguard.services.daily import STAGES, daily_run

    assert STAGES[0] == "costs"
    lid = _loan(container, principal="10000", fees="2000", rate="12", lender_type="private",
                schedule=_monthly(12, "1000"))
    licensed = _loan(container, principal="10000", fees="2000", schedule=_monthly(12, "1000"))
    first = daily_run(container, as_of=dt.date(2025, 6, 1))
    assert first["apr_computed"] == 1 and float(_apr(container, lid)) == pytest.approx(
        _scalar("10000", "2000", _monthly(12, "1000")), abs=0.005)
    assert _apr(container, licensed) is None  # not capped: its APR changes no guard verdict
    later = _loan(container, principal="5000", lender_type="unlicensed", schedule=_monthly(6, "900"))
    second = daily_run(container, as_of=dt.date(2025, 6, 2))
    assert second["apr_computed"] == 1 and _apr(container, later) is not None
    assert loan_apr_run(container)["vectorised"] == 1 and _apr(container, licensed) is not None


def test_unlicensed_lending_above_36_percent_is_illegal_without_an_lpr(container):
    lid = _loan(container, principal="1000", fees="300", rate="10", lender_type="unlicensed", lpr=None,
                schedule=[(START + dt.timedelta(days=7), "1000")])
    private = _loan(container, principal="10000", fees="2000", lender_type="private", lpr=None,
                    schedule=_monthly(12, "1000"))
    loan_apr_run(container)
    p = _staff(container)
    listed = loans_over_cap(container, principal=p)["items"]
    assert [(x["loan_id"], x["status"], x["citations"]) for x in listed] == [(lid, "illegal", ["CN:ILL2019"])]
    assert loan_cost(container, principal=p, loan_id=private)["status"] == "unknown"  # no LPR: never guessed
