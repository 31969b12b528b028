"""DPD, buckets and payment application per DESIGN §13 (collectguard.domain.delinquency)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from collectguard.domain.delinquency import (
    DEFAULT_BUCKETS,
    BucketScheme,
    Installment,
    Payment,
    assess_delinquency,
)
from collectguard.errors import BadInput

# Three monthly installments of 100 principal + 10 interest + 5 fee.
LOAN = [Installment(seq, date(2024, seq, 10), D(100), D(10), D(5)) for seq in (1, 2, 3)]


def at(as_of, *payments, installments=LOAN, **kwargs):
    return assess_delinquency(installments, [Payment(d, D(a)) for d, a in payments], as_of=as_of, **kwargs)


def test_current_before_first_due_date():
    s = at(date(2024, 1, 5))
    assert (s.dpd, s.bucket, s.oldest_unpaid_due_date) == (0, "M0", date(2024, 1, 10))
    assert s.overdue_amount == 0
    assert s.outstanding == D(345)


def test_due_date_itself_is_not_past_due():
    assert at(date(2024, 1, 10)).dpd == 0
    assert at(date(2024, 1, 11)).dpd == 1
    assert at(date(2024, 1, 11)).bucket == "M1"


def test_dpd_counts_from_the_oldest_unpaid_installment():
    s = at(date(2024, 3, 20))
    assert s.dpd == (date(2024, 3, 20) - date(2024, 1, 10)).days == 70
    assert s.bucket == "M3"
    assert s.overdue_amount == D(345)


def test_partial_payment_leaves_installment_unpaid():
    s = at(date(2024, 2, 1), (date(2024, 1, 10), "114.99"))
    assert s.dpd == 22
    assert s.installments[0].outstanding == D("0.01")
    assert s.installments[0].paid_off_on is None


def test_fees_then_interest_then_principal_within_an_installment():
    s = at(date(2024, 1, 20), (date(2024, 1, 10), 12))
    first = s.installments[0]
    assert (first.fee_paid, first.interest_paid, first.principal_paid) == (D(5), D(7), D(0))
    assert (s.outstanding_fees, s.outstanding_interest, s.outstanding_principal) == (D(10), D(23), D(300))


def test_oldest_installment_first_across_installments():
    s = at(date(2024, 3, 1), (date(2024, 2, 20), 130))
    assert s.installments[0].paid_off_on == date(2024, 2, 20)
    assert (s.installments[1].fee_paid, s.installments[1].interest_paid) == (D(5), D(10))
    assert s.oldest_unpaid_due_date == date(2024, 2, 10)
    assert s.dpd == 20


def test_installments_in_any_input_order():
    shuffled = [LOAN[2], LOAN[0], LOAN[1]]
    assert at(date(2024, 3, 1), (date(2024, 2, 20), 130), installments=shuffled) == \
        at(date(2024, 3, 1), (date(2024, 2, 20), 130))


def test_paying_the_overdue_installment_cures():
    s = at(date(2024, 2, 5), (date(2024, 2, 1), 115))
    assert (s.dpd, s.bucket) == (0, "M0")


def test_payments_after_as_of_do_not_count():
    s = at(date(2024, 2, 5), (date(2024, 2, 6), 1000))
    assert (s.dpd, s.paid_total, s.credit) == (26, D(0), D(0))


def test_closed_with_overpayment_credit():
    s = at(date(2024, 5, 1), (date(2024, 1, 1), 300), (date(2024, 3, 1), "100.50"))
    assert (s.bucket, s.dpd, s.closed) == ("closed", 0, True)
    assert s.credit == D("55.50")
    assert s.outstanding == 0
    assert s.installments[2].paid_off_on == date(2024, 3, 1)


def test_no_installments_is_closed():
    assert at(date(2024, 1, 1), installments=[]).bucket == "closed"


def test_zero_due_installment_is_never_unpaid():
    loan = [Installment(1, date(2024, 1, 10), D(0)), *LOAN[1:]]
    s = at(date(2024, 2, 1), installments=loan)
    assert (s.oldest_unpaid_due_date, s.dpd) == (date(2024, 2, 10), 0)


@pytest.mark.parametrize(("dpd", "bucket"), [
    (0, "M0"), (1, "M1"), (30, "M1"), (31, "M2"), (60, "M2"), (61, "M3"), (90, "M3"), (91, "M4"),
    (120, "M4"), (121, "M5"), (150, "M5"), (151, "M6"), (180, "M6"), (181, "M6+"), (4000, "M6+"),
])
def test_bucket_edges(dpd, bucket):
    assert DEFAULT_BUCKETS.bucket(dpd) == bucket


def test_bucket_names_cover_every_state():
    assert DEFAULT_BUCKETS.names == ("M0", "M1", "M2", "M3", "M4", "M5", "M6", "M6+", "closed")


def test_configurable_buckets():
    scheme = BucketScheme(edges=(("current", 0), ("early", 15), ("late", 90)), beyond="write_off")
    got = [scheme.bucket(d) for d in (0, 15, 16, 90, 91)]
    assert got == ["current", "early", "late", "late", "write_off"]
    assert at(date(2024, 6, 1), buckets=scheme).bucket == "write_off"


@pytest.mark.parametrize("edges", [(), (("M1", 30),), (("M0", 0), ("M1", 30), ("M2", 30)),
                                   (("M0", 0), ("M0", 30))])
def test_bad_bucket_schemes(edges):
    with pytest.raises(BadInput):
        BucketScheme(edges=edges)


def test_negative_dpd_refused():
    with pytest.raises(BadInput):
        DEFAULT_BUCKETS.bucket(-1)


@pytest.mark.parametrize(("installments", "payments", "field"), [
    ([Installment(1, date(2024, 1, 1), 100.0)], [], "installments[0].principal_due"),  # type: ignore[arg-type]
    ([Installment(1, date(2024, 1, 1), D(-1))], [], "installments[0].principal_due"),
    ([Installment(1, date(2024, 1, 1), D(1), fee_due=D("NaN"))], [], "installments[0].fee_due"),
    (LOAN, [Payment(date(2024, 1, 1), D(-5))], "payments[0].amount"),
    ([LOAN[0], LOAN[0]], [], "installments"),
])
def test_bad_amounts(installments, payments, field):
    with pytest.raises(BadInput) as info:
        assess_delinquency(installments, payments, as_of=date(2024, 3, 1))
    assert info.value.field == field
