"""Regulation Z Appendix J actuarial APR and the annualised IRR (collectguard.domain.apr)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from collectguard.cli.apr import register
from collectguard.domain.apr import (
    UNIT_PERIODS,
    Loan,
    Payment,
    add_months,
    apr,
    compute_apr,
    parse_loan,
    periods_between,
    schedule_dates,
    solve_rate,
)
from collectguard.errors import BadInput

EXAMPLE = Path("/work/shared/examples/apr-regz-c1i.json")


def schedule(advance, advance_date, count, amount, first_date, frequency, **extra):
    return {"advance": str(advance), "advance_date": advance_date, **extra,
            "schedule": {"count": count, "amount": str(amount), "first_date": first_date,
                         "frequency": frequency}}


def flows(advance, advance_date, payments, **extra):
    return {"advance": str(advance), "advance_date": advance_date, **extra,
            "payments": [{"date": d.isoformat(), "amount": str(a)} for d, a in payments]}


def monthly(first: date, n: int, amount, step: int = 1):
    return [(add_months(first, step * k), amount) for k in range(n)]


def every(first: date, n: int, amount, days: int):
    return [(first + timedelta(days=days * k), amount) for k in range(n)]


# Appendix J (c); dates as encoded in simontreanor/FSharp.Finance.Personal tests/AprUsActuarialTests.fs
APPENDIX_J = {
    "(c)(1)(i) monthly, regular first period": (
        schedule(5000, "1978-01-10", 24, 230, "1978-02-10", "monthly"), 9.69),
    "(c)(1)(ii) monthly, long first period": (
        schedule(6000, "1978-02-10", 36, 200, "1978-04-01", "monthly"), 11.82),
    "(c)(1)(iii) semimonthly, short first period": (
        schedule(5000, "1978-02-23", 24, "219.17", "1978-03-01", "semimonthly"), 10.34),
    "(c)(1)(iv) quarterly, long first period": (
        schedule(10000, "1978-05-23", 40, 385, "1978-10-01", "quarterly"), 8.97),
    "(c)(1)(v) weekly, long first period": (
        schedule(500, "1978-03-20", 30, "17.60", "1978-04-21", "weekly"), 14.96),
    "(c)(2)(i) irregular first payment": (
        flows(5000, "1978-01-10", [(date(1978, 2, 10), 250), *monthly(date(1978, 3, 10), 23, 230)]),
        10.08),
    "(c)(3)(i) irregular final payment": (
        flows(5000, "1978-01-10", [*monthly(date(1978, 2, 10), 23, 230), (date(1980, 1, 10), 280)]),
        10.50),
}

# Further examples from the same source, and its "confirmed using Excel" edge cases.
MORE_EXAMPLES = {
    "(c)(2)(ii) 4-weekly, long first period, odd first payment": (
        flows(400, "1978-03-18", [(date(1978, 4, 20), "39.50"), *every(date(1978, 5, 18), 11, "38.31", 28)]),
        28.50),
    "(c)(3)(ii) biweekly, short first period, odd final payment": (
        flows(200, "1978-04-03", [*every(date(1978, 4, 11), 19, "9.50", 14), (date(1979, 1, 2), 30)]),
        12.22),
    "(c)(4)(i) odd first and final payments": (
        flows(5000, "1978-01-10", [(date(1978, 2, 10), 250), *monthly(date(1978, 3, 10), 22, 230),
                                   (date(1980, 1, 10), 280)]), 10.90),
    "(c)(4)(ii) every two months, odd first and final payments": (
        flows(8000, "1978-01-10", [(date(1978, 3, 1), "449.36"), *monthly(date(1978, 5, 1), 18, 465, 2),
                                   (date(1981, 5, 1), 200)]), 7.30),
    "(c)(5)(i) single payment, term in days": (
        flows(1000, "1978-01-03", [(date(1978, 9, 15), 1080)]), 11.45),
    "quarterly, shorter first period": (
        schedule(10000, "1978-06-23", 40, 385, "1978-10-01", "quarterly"), 9.15),
    "quarterly, first period under one unit-period": (
        schedule(10000, "1978-07-23", 40, 385, "1978-10-01", "quarterly"), 9.32),
    "daily payments": (flows(1000, "2023-10-26", every(date(2023, 11, 30), 5, 220, 1)), 94.15),
    "weekly, long first period": (flows(1000, "2023-10-28", every(date(2023, 11, 30), 5, 250, 7)), 176.52),
    "weekly, first period of one week": (
        flows(1000, "2023-11-23", every(date(2023, 11, 30), 5, 250, 7)), 412.40),
    "weekly, first period under a week": (
        flows(1000, "2023-11-24", every(date(2023, 11, 30), 5, 250, 7)), 434.30),
    "yearly payments": (flows(1000, "2023-10-26", monthly(date(2023, 11, 30), 5, 500, 12)), 78.34),
}


@pytest.mark.parametrize(("data", "expected"), APPENDIX_J.values(), ids=APPENDIX_J.keys())
def test_appendix_j_examples(data, expected):
    assert apr(data)["apr"] == expected


@pytest.mark.parametrize(("data", "expected"), MORE_EXAMPLES.values(), ids=MORE_EXAMPLES.keys())
def test_more_appendix_j_examples(data, expected):
    assert apr(data)["apr"] == expected


def test_shared_contract_example():
    example = json.loads(EXAMPLE.read_text()) if EXAMPLE.exists() else {
        "input": schedule(5000, "1978-01-10", 24, 230, "1978-02-10", "monthly"), "expected_apr": 9.69}
    assert apr(example["input"])["apr"] == example["expected_apr"]


def test_output_shape():
    out = apr(APPENDIX_J["(c)(1)(i) monthly, regular first period"][0])
    assert out == {"apr": 9.69, "method": "actuarial", "unit_period": "month", "unit_periods_per_year": 12,
                   "amount_financed": "5000.00", "finance_charge": "520.00", "total_of_payments": "5520.00"}
    assert isinstance(out["apr"], float)
    json.dumps(out)


def test_schedule_and_payment_forms_agree():
    payments = [(d, 230) for d in schedule_dates(date(1978, 2, 10), 24, "monthly")]
    regular = APPENDIX_J["(c)(1)(i) monthly, regular first period"][0]
    assert apr(flows(5000, "1978-01-10", payments)) == apr(regular)


def test_payments_in_any_order():
    data = APPENDIX_J["(c)(2)(i) irregular first payment"][0]
    shuffled = {**data, "payments": list(reversed(data["payments"]))}
    assert apr(shuffled) == apr(data)


# --- odd periods, counted per (b)(5) ---------------------------------------------------------------

@pytest.mark.parametrize(("start", "end", "unit", "t", "f"), [
    (date(1978, 2, 10), date(1978, 4, 1), "month", 1, 19 / 30),       # (c)(1)(ii): 1 month 19 days
    (date(1978, 2, 23), date(1978, 3, 1), "semimonth", 0, 6 / 15),
    (date(1978, 2, 23), date(1978, 3, 16), "semimonth", 1, 6 / 15),
    (date(1978, 5, 23), date(1978, 10, 1), "quarter", 1, 39 / 90),    # 4 months 9 days = 129 days
    (date(1978, 3, 20), date(1978, 4, 21), "week", 4, 4 / 7),
    (date(1978, 3, 18), date(1978, 4, 20), "4weeks", 1, 5 / 28),
    (date(1978, 1, 10), date(1978, 3, 1), "2months", 0, 52 / 60),
    (date(2023, 10, 26), date(2024, 11, 30), "year", 1, 35 / 365),
    (date(2023, 10, 26), date(2025, 4, 26), "year", 1, 6 / 12),
    (date(2024, 1, 1), date(2024, 1, 1), "day", 0, 0.0),
    (date(2024, 1, 31), date(2024, 2, 29), "month", 1, 0.0),         # month end to month end
    (date(2024, 3, 30), date(2025, 2, 28), "month", 11, 0.0),        # day 30 clamped in February
    (date(2024, 1, 31), date(2024, 3, 15), "month", 1, 15 / 30),     # back to Feb 15, then 15 days
])
def test_periods_between(start, end, unit, t, f):
    got_t, got_f = periods_between(start, end, UNIT_PERIODS[unit])
    assert got_t == t
    assert got_f == pytest.approx(f)


@pytest.mark.parametrize(("first", "frequency", "expected"), [
    (date(2024, 1, 31), "monthly", [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31)]),
    (date(2024, 1, 1), "semimonthly", [date(2024, 1, 1), date(2024, 1, 16), date(2024, 2, 1)]),
    (date(2024, 1, 15), "semimonthly", [date(2024, 1, 15), date(2024, 1, 30), date(2024, 2, 15),
                                        date(2024, 2, 29)]),
    (date(2024, 1, 20), "semimonthly", [date(2024, 1, 20), date(2024, 2, 5), date(2024, 2, 20)]),
    (date(2024, 1, 10), "biweekly", [date(2024, 1, 10), date(2024, 1, 24)]),
    (date(2024, 11, 30), "quarterly", [date(2024, 11, 30), date(2025, 2, 28), date(2025, 5, 30)]),
])
def test_schedule_dates(first, frequency, expected):
    assert schedule_dates(first, len(expected), frequency) == expected


@pytest.mark.parametrize(("payments", "unit"), [
    (every(date(2024, 1, 8), 10, 100, 7), "week"),
    (every(date(2024, 1, 15), 10, 100, 14), "2weeks"),
    (every(date(2024, 1, 29), 10, 100, 28), "4weeks"),
    (every(date(2024, 1, 2), 10, 100, 1), "day"),
    ([(d, 100) for d in schedule_dates(date(2024, 1, 16), 10, "semimonthly")], "semimonth"),
    (monthly(date(2024, 1, 31), 10, 100), "month"),
    (monthly(date(2024, 2, 20), 10, 100, 2), "2months"),
    (monthly(date(2024, 3, 1), 10, 100, 3), "quarter"),
    (monthly(date(2025, 1, 1), 4, 400, 12), "year"),
    # no common period: the average interval (about 40 days) rounds to a month
    ([(date(2024, 2, 10), 300), (date(2024, 3, 30), 300), (date(2024, 5, 1), 300)], "month"),
])
def test_unit_period_inferred(payments, unit):
    assert apr(flows(800, "2024-01-01", payments))["unit_period"] == unit


def test_explicit_unit_period_wins():
    data = APPENDIX_J["(c)(1)(i) monthly, regular first period"][0]
    out = apr({**data, "unit_period": "day"})
    assert out["unit_period"] == "day"
    assert out["unit_periods_per_year"] == 365
    assert out["apr"] != 9.69


# --- single payments, fees, high rates ------------------------------------------------------------

def test_single_payment_whole_months_uses_twelve_over_months():
    out = apr(flows(1000, "2024-01-15", [(date(2024, 4, 15), 1030)]))
    assert (out["unit_period"], out["unit_periods_per_year"], out["apr"]) == ("term", 4, 12.00)


def test_single_payment_over_a_year_uses_year_unit():
    out = apr(flows(1000, "2024-01-01", [(date(2026, 1, 1), 1210)]))
    assert (out["unit_period"], out["apr"]) == ("year", 10.00)


def test_upfront_fees_raise_the_apr():
    base = schedule(5000, "1978-01-10", 24, 230, "1978-02-10", "monthly")
    with_fees = {**base, "upfront_fees": "250"}
    out = apr(with_fees)
    assert out["amount_financed"] == "4750.00"
    assert out["finance_charge"] == "770.00"
    assert out["apr"] > apr(base)["apr"] + 4


def test_payday_loan_of_700_in_hand_repaying_1000_after_7_days():
    data = flows(1000, "2024-03-01", [(date(2024, 3, 8), 1000)], upfront_fees=300)
    out = apr(data)
    # (b)(5)(vii): one unit-period of 7 days, 365/7 a year: (1000/700 - 1) * 365/7
    assert out["apr"] == 2234.69
    assert apr({**data, "unit_period": "week"})["apr"] == 2228.57  # 52 weeks a year
    assert apr(data, method="irr")["apr"] > 1e9  # compounding 52 times a year


def test_extreme_rate_converges():
    daily = flows(100, "2024-01-01", every(date(2024, 1, 2), 30, 100, 1))
    out = apr(daily)
    assert out["apr"] > 30000
    assert compute_apr(parse_loan(daily)).apr == out["apr"]


def test_zero_interest_is_zero():
    assert apr(schedule(1200, "2024-01-01", 12, 100, "2024-02-01", "monthly"))["apr"] == 0.0
    assert apr(schedule(1200, "2024-01-01", 12, 100, "2024-02-01", "monthly"), method="irr")["apr"] == 0.0


def test_payments_below_amount_financed_give_a_negative_rate():
    assert apr(schedule(1200, "2024-01-01", 12, 90, "2024-02-01", "monthly"))["apr"] < 0


def test_solver_matches_closed_form():
    # 1 payment of 110 one period after 100 lent: i = 10% exactly
    assert solve_rate([(110.0, 0.0, 1.0)], 100.0) == pytest.approx(0.1, abs=1e-14)
    assert solve_rate([(110.0, 0.5, 0.0)], 100.0) == pytest.approx(0.2, abs=1e-14)


def test_irr_is_effective_annual_rate_over_exact_days():
    out = apr(flows(1000, "2023-01-01", [(date(2024, 1, 1), 1100)]), method="irr")
    assert (out["method"], out["unit_period"], out["apr"]) == ("irr", "day", 10.00)
    # monthly 230 x 24 on 5000: nominal 9.69, effective annual about 10.1
    assert apr(APPENDIX_J["(c)(1)(i) monthly, regular first period"][0], method="irr")["apr"] == 10.15


def test_loan_dataclass_api():
    loan = Loan(Decimal(5000), date(1978, 1, 10),
                tuple(Payment(d, Decimal(230)) for d in schedule_dates(date(1978, 2, 10), 24, "monthly")))
    result = compute_apr(loan)
    assert result.apr == 9.69
    assert result.finance_charge == Decimal(520)


# --- bad input -------------------------------------------------------------------------------------

GOOD = schedule(5000, "1978-01-10", 24, 230, "1978-02-10", "monthly")


def without(key):
    return {k: v for k, v in GOOD.items() if k != key}


@pytest.mark.parametrize(("data", "field"), [
    (without("advance"), "advance"),
    (without("advance_date"), "advance_date"),
    (without("schedule"), "payments"),
    ({**GOOD, "payments": []}, "payments"),
    ({**without("schedule"), "payments": []}, "payments"),
    ({**without("schedule"), "payments": [{"date": "1978-02-10"}]}, "payments[0].amount"),
    ({**without("schedule"), "payments": [{"amount": "1"}]}, "payments[0].date"),
    ({**without("schedule"), "payments": [{"date": "1978-01-09", "amount": "6000"}]}, "payments[0].date"),
    ({**without("schedule"), "payments": [{"date": "1978-02-10", "amount": "-5"}]}, "payments[0].amount"),
    ({**without("schedule"), "payments": [{"date": "1978-01-10", "amount": "6000"}]}, "payments"),
    ({**without("schedule"), "payments": "soon"}, "payments"),
    ({**GOOD, "advance": "-5000"}, "advance"),
    ({**GOOD, "advance": "0"}, "advance"),
    ({**GOOD, "advance": 5000.0}, "advance"),
    ({**GOOD, "advance": "1e3"}, "advance"),
    ({**GOOD, "advance": "NaN"}, "advance"),
    ({**GOOD, "advance": "Infinity"}, "advance"),
    ({**GOOD, "advance": True}, "advance"),
    ({**GOOD, "advance": "5,000"}, "advance"),
    ({**GOOD, "advance_date": "10/01/1978"}, "advance_date"),
    ({**GOOD, "advance_date": "1978-02-30"}, "advance_date"),
    ({**GOOD, "upfront_fees": "-1"}, "upfront_fees"),
    ({**GOOD, "upfront_fees": "5000"}, "upfront_fees"),
    ({**GOOD, "unit_period": "fortnight"}, "unit_period"),
    ({**GOOD, "upfront_fee": "10"}, "upfront_fee"),
    ({**GOOD, "schedule": {**GOOD["schedule"], "count": 0}}, "schedule.count"),
    ({**GOOD, "schedule": {**GOOD["schedule"], "count": "24"}}, "schedule.count"),
    ({**GOOD, "schedule": {**GOOD["schedule"], "count": 10**6}}, "schedule.count"),
    ({**GOOD, "schedule": {**GOOD["schedule"], "frequency": "daily"}}, "schedule.frequency"),
    ({**GOOD, "schedule": {**GOOD["schedule"], "amount": "0"}}, "schedule.amount"),
    ({**GOOD, "schedule": {**GOOD["schedule"], "first_date": "1977-12-31"}}, "schedule.first_date"),
    ({**GOOD, "schedule": {"count": 24}}, "schedule.amount"),
    ({**GOOD, "schedule": [1, 2]}, "schedule"),
    ({**GOOD, "schedule": {**GOOD["schedule"], "frequency": ["monthly"]}}, "schedule.frequency"),
    ({**GOOD, "schedule": {**GOOD["schedule"], "count": 1, "first_date": "1978-01-10"}},
     "schedule.first_date"),
    ({**GOOD, "unit_period": ["month"]}, "unit_period"),
    ({**GOOD, "advance_date": datetime(1978, 1, 10, 12, 0)}, "advance_date"),
    ({**GOOD, "upfront_fees": None}, "upfront_fees"),
])
def test_bad_input_names_the_field(data, field):
    with pytest.raises(BadInput) as info:
        apr(data)
    assert info.value.field == field


def test_bad_method():
    with pytest.raises(BadInput) as info:
        apr(GOOD, method="flat")
    assert info.value.field == "method"


def test_not_an_object():
    with pytest.raises(BadInput):
        apr([GOOD])  # type: ignore[arg-type]


# --- CLI --------------------------------------------------------------------------------------------

@pytest.fixture
def cli():
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Test root so that ``apr`` is a subcommand."""

    register(app)
    return lambda args, stdin="": CliRunner().invoke(app, args, input=stdin)


def test_cli_single_object(cli):
    result = cli(["apr", "-"], json.dumps(GOOD))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["apr"] == 9.69


def test_cli_file_and_json_numbers(cli, tmp_path):
    path = tmp_path / "loan.json"
    path.write_text('{"advance": 5000.00, "advance_date": "1978-01-10", "schedule": {"count": 24, '
                    '"amount": 230.0, "first_date": "1978-02-10", "frequency": "monthly"}}')
    result = cli(["apr", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["apr"] == 9.69


def test_cli_json_lines_and_irr(cli):
    lines = "\n".join(json.dumps(d) for d, _ in list(APPENDIX_J.values())[:3]) + "\n\n"
    result = cli(["apr", "-", "--method", "irr"], lines)
    assert result.exit_code == 0, result.output
    outs = [json.loads(x) for x in result.stdout.splitlines()]
    assert [o["method"] for o in outs] == ["irr"] * 3


def test_cli_bad_line_is_named(cli):
    lines = json.dumps(GOOD) + "\n" + json.dumps(GOOD).replace('"5000"', "1e3") + "\n"
    result = cli(["apr", "-"], lines)
    assert isinstance(result.exception, BadInput)
    assert result.exception.line == 2
    assert result.exception.detail["field"] == "advance"


@pytest.mark.parametrize(("args", "stdin"), [
    (["apr", "-"], ""),
    (["apr", "-"], "{not json\n"),
    (["apr", "-"], "[1, 2]"),
    (["apr", "-", "--method", "flat"], json.dumps(GOOD)),
    (["apr", "/nonexistent/loan.json"], ""),
])
def test_cli_bad_input(cli, args, stdin):
    assert isinstance(cli(args, stdin).exception, BadInput)
