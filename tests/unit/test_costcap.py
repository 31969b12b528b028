"""Legal cost caps (CATALOGUE §1c) and claimable interest (collectguard.domain.costcap)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from collectguard.domain.costcap import CapPolicy, ChargeSchedule, assess_cost_cap, claimable_interest
from collectguard.domain.delinquency import Installment
from collectguard.errors import BadInput


def test_worked_case_12_private_lender_capped_at_4x_lpr():
    # CATALOGUE §2 case 12: signed 2024, 24% p.a. + 10% overdue penalty, LPR 3.45% -> 13.8% in total
    v = assess_cost_cap(lender_type="private", agreed_rate=D(24), overdue_rate=D(10),
                        lpr_at_signing=D("3.45"), signed_on=date(2024, 5, 1))
    assert v.status == "over_cap"
    assert v.cap_rate == D("13.8") and v.cap_binding
    assert v.claimable_rate == D("13.8")
    assert v.excess_rate == D("20.2")
    assert v.citations == ("CN:SPCLENDING:25", "CN:SPCLENDING:29")
    assert v.notes == ()


def test_same_contract_with_a_small_loan_company_is_not_under_4x_lpr():
    v = assess_cost_cap(lender_type="small_loan_company", agreed_rate=D(24), overdue_rate=D(10),
                        lpr_at_signing=D("3.45"))
    assert (v.status, v.cap_binding, v.cap_rate, v.claimable_rate) == ("valid", False, D(24), D(34))
    assert [n.rule for n in v.notes] == ["cn.cost_cap.courts_may_adjust"]
    assert "CN:SPC2020-27" in v.citations


def test_private_within_cap_is_valid():
    v = assess_cost_cap(lender_type="private", agreed_rate=D(10), overdue_rate=D("3.8"),
                        lpr_at_signing=D("3.45"))
    assert (v.status, v.excess_rate) == ("valid", D(0))
    assert v.citations == ("CN:SPCLENDING:25", "CN:SPCLENDING:29")


def test_private_overdue_total_alone_over_cap_cites_article_29():
    v = assess_cost_cap(lender_type="private", agreed_rate=D(10), overdue_rate=D(5), lpr_at_signing=D("3.45"))
    assert (v.status, v.citations) == ("over_cap", ("CN:SPCLENDING:29",))
    assert v.claimable_rate == D("13.80")


def test_licensed_institution_24_percent_reference_is_a_warning():
    ok = assess_cost_cap(lender_type="licensed_institution", agreed_rate=D(18))
    high = assess_cost_cap(lender_type="licensed_institution", agreed_rate=D(18), actual_apr=D("35.9"))
    assert (ok.status, ok.notes) == ("valid", ())
    assert high.status == "valid"
    assert [n.rule for n in high.notes] == ["cn.cost_cap.courts_may_adjust"]
    assert high.citations == ("CN:SPCFIN2017",)


@pytest.mark.parametrize(("actual", "status"), [(D(36), "over_cap"), (D("36.01"), "illegal")])
def test_unlicensed_above_36_percent_is_illegal(actual, status):
    v = assess_cost_cap(lender_type="unlicensed", agreed_rate=D(20), actual_apr=actual,
                        lpr_at_signing=D("3.45"))
    assert v.status == status
    assert ("CN:ILL2019" in v.citations) == (status == "illegal")
    assert v.claimable_rate == D("13.80")


def test_worked_case_10_unlicensed_60_percent():
    v = assess_cost_cap(lender_type="unlicensed", agreed_rate=D(60), lpr_at_signing=D("3.85"))
    assert v.status == "illegal"
    assert v.citations[0] == "CN:ILL2019"


def test_contract_before_lpr_rule_gets_a_note():
    v = assess_cost_cap(lender_type="private", agreed_rate=D(12), lpr_at_signing=D("4.15"),
                        signed_on=date(2019, 12, 1))
    assert [n.rule for n in v.notes] == ["cn.cost_cap.transitional"]


def test_policy_thresholds_are_data():
    v = assess_cost_cap(lender_type="private", agreed_rate=D(12), lpr_at_signing=D("3.45"),
                        policy=CapPolicy(lpr_multiple=D(3)))
    assert (v.cap_rate, v.status) == (D("10.35"), "over_cap")


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"lender_type": "pawnshop"}, "lender_type"),
    ({"lender_type": "private", "lpr_at_signing": None}, "lpr_at_signing"),
    ({"lender_type": "unlicensed", "lpr_at_signing": None}, "lpr_at_signing"),
    ({"agreed_rate": D(-1)}, "agreed_rate"),
    ({"agreed_rate": 24.0}, "agreed_rate"),
    ({"overdue_rate": D("NaN")}, "overdue_rate"),
    ({"lpr_at_signing": "3.45"}, "lpr_at_signing"),
])
def test_bad_input(kwargs, field):
    base = {"lender_type": "private", "agreed_rate": D(24), "lpr_at_signing": D("3.45")}
    with pytest.raises(BadInput) as info:
        assess_cost_cap(**(base | kwargs))
    assert info.value.field == field


# --- money over a schedule -----------------------------------------------------------------------

# 3,650 lent on 2024-01-01, repaid in two installments of principal after 100 and 200 days.
SCHEDULE = ChargeSchedule(
    principal=D(3650), disbursed_on=date(2024, 1, 1),
    installments=[Installment(1, date(2024, 4, 10), D(1825), D(400)),
                  Installment(2, date(2024, 7, 19), D(1825), D(400), D(50))],
)


def test_claimable_interest_is_simple_interest_on_outstanding_principal():
    # 3650 x 10% x 100/365 + 1825 x 10% x 100/365 = 100 + 50
    assert claimable_interest(SCHEDULE, D(10)) == D("150.00")


def test_upfront_fees_reduce_the_principal_and_count_as_charged():
    sched = ChargeSchedule(D(3650), date(2024, 1, 1), SCHEDULE.installments, upfront_fees=D(365))
    # (3650 - 365) x 10% x 100/365 + (3285 - 1825) x 10% x 100/365 = 90 + 40
    assert claimable_interest(sched, D(10)) == D("130.00")
    v = assess_cost_cap(lender_type="private", agreed_rate=D(40), lpr_at_signing=D("2.5"), schedule=sched)
    assert v.charged == D(365 + 400 + 400 + 50)
    assert (v.claimable_interest, v.excess) == (D("130.00"), D("1085.00"))


def test_verdict_money_for_private_lender():
    v = assess_cost_cap(lender_type="private", agreed_rate=D(40), overdue_rate=D(0), lpr_at_signing=D("2.5"),
                        schedule=ChargeSchedule(**{**vars(SCHEDULE), "overdue_charges": D(100)}))
    assert v.charged == D(950)
    assert v.claimable_interest == D("150.00")
    assert v.excess == D("800.00")
    assert v.to_dict()["excess"] == "800.00"


def test_charges_within_cap_are_all_claimable():
    cheap = ChargeSchedule(D(3650), date(2024, 1, 1),
                           [Installment(1, date(2024, 4, 10), D(1825), D(20)),
                            Installment(2, date(2024, 7, 19), D(1825), D(20))])
    v = assess_cost_cap(lender_type="private", agreed_rate=D(5), lpr_at_signing=D("2.5"), schedule=cheap)
    assert (v.claimable_interest, v.excess) == (D(40), D(0))


def test_non_binding_reference_claims_everything_charged():
    v = assess_cost_cap(lender_type="licensed_institution", agreed_rate=D(30), schedule=SCHEDULE)
    assert (v.charged, v.claimable_interest, v.excess) == (D(850), D(850), D(0))


def test_installment_before_disbursement_is_bad_input():
    bad = ChargeSchedule(D(100), date(2024, 2, 1), [Installment(1, date(2024, 1, 1), D(100))])
    with pytest.raises(BadInput):
        claimable_interest(bad, D(10))


def test_to_dict_is_json_ready():
    import json

    v = assess_cost_cap(lender_type="small_loan_company", agreed_rate=D(30))
    data = json.loads(json.dumps(v.to_dict()))
    assert data["notes"][0]["citations"] == ["CN:SPC2020-27", "CN:SPCFIN2017"]
    assert data["charged"] is None
