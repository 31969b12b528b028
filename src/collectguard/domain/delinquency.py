"""Days past due and buckets (DESIGN §13): payments applied to installments, oldest first.

Payments are poured into the installments in due-date order (fees, then interest, then principal
within one installment) regardless of when they were made, so the split depends only on the
total paid up to the as-of date; what exceeds the whole schedule is kept as a credit. An
installment is unpaid until fully covered. DPD on D counts from the due date of the oldest unpaid
installment when that date is before D. Time is an argument: nothing here reads the clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from itertools import pairwise

from collectguard.domain.money import ZERO
from collectguard.errors import BadInput


@dataclass(frozen=True)
class Installment:
    """One scheduled installment (the ``installments`` import row of DESIGN §9)."""

    seq: int
    due_date: date
    principal_due: Decimal
    interest_due: Decimal = ZERO
    fee_due: Decimal = ZERO

    @property
    def total_due(self) -> Decimal:
        """Principal, interest and fees due together."""
        return self.principal_due + self.interest_due + self.fee_due


@dataclass(frozen=True)
class Payment:
    """Money received on ``paid_on`` (the ``payments`` import row of DESIGN §9)."""

    paid_on: date
    amount: Decimal


@dataclass(frozen=True)
class InstallmentState:
    """How much of one installment is paid as of the assessment date."""

    seq: int
    due_date: date
    fee_paid: Decimal
    interest_paid: Decimal
    principal_paid: Decimal
    outstanding: Decimal
    paid_off_on: date | None  # date of the payment that completed it; None while unpaid

    @property
    def paid(self) -> Decimal:
        """Everything applied to this installment."""
        return self.fee_paid + self.interest_paid + self.principal_paid


DEFAULT_EDGES: tuple[tuple[str, int], ...] = (
    ("M0", 0), ("M1", 30), ("M2", 60), ("M3", 90), ("M4", 120), ("M5", 150), ("M6", 180),
)


@dataclass(frozen=True)
class BucketScheme:
    """Bucket names with the highest DPD each holds; above the last edge is ``beyond``."""

    edges: tuple[tuple[str, int], ...] = DEFAULT_EDGES
    beyond: str = "M6+"
    closed: str = "closed"

    def __post_init__(self) -> None:
        uppers = [upper for _, upper in self.edges]
        names = [name for name, _ in self.edges] + [self.beyond, self.closed]
        if not uppers or uppers[0] != 0:
            raise BadInput("the first bucket must hold DPD 0 (current loans)", field="buckets")
        if any(b <= a for a, b in pairwise(uppers)):
            raise BadInput("bucket edges must increase", field="buckets")
        if len(set(names)) != len(names):
            raise BadInput("bucket names must be distinct", field="buckets")

    @property
    def names(self) -> tuple[str, ...]:
        """Every bucket a loan can be in, ``closed`` last."""
        return (*(name for name, _ in self.edges), self.beyond, self.closed)

    def bucket(self, dpd: int) -> str:
        """The bucket of an open loan with ``dpd`` days past due."""
        if dpd < 0:
            raise BadInput(f"DPD cannot be negative, got {dpd}", field="dpd")
        for name, upper in self.edges:
            if dpd <= upper:
                return name
        return self.beyond


DEFAULT_BUCKETS = BucketScheme()


@dataclass(frozen=True)
class Delinquency:
    """The state of one loan as of a date."""

    as_of: date
    dpd: int
    bucket: str
    oldest_unpaid_due_date: date | None
    outstanding_principal: Decimal
    outstanding_interest: Decimal
    outstanding_fees: Decimal
    overdue_amount: Decimal  # outstanding on installments due before as_of
    paid_total: Decimal  # payments dated on or before as_of
    credit: Decimal  # paid beyond the whole schedule
    installments: tuple[InstallmentState, ...] = field(default=())

    @property
    def outstanding(self) -> Decimal:
        """Principal, interest and fees still owed (due or not yet due)."""
        return self.outstanding_principal + self.outstanding_interest + self.outstanding_fees

    @property
    def closed(self) -> bool:
        """Nothing is outstanding."""
        return self.outstanding == 0


def _check_amount(value: object, where: str) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise BadInput(f"expected a finite Decimal of zero or more, got {value!r}", field=where)


def assess_delinquency(
    installments: Sequence[Installment],
    payments: Sequence[Payment],
    *,
    as_of: date,
    buckets: BucketScheme = DEFAULT_BUCKETS,
) -> Delinquency:
    """Apply the payments made on or before ``as_of`` and return DPD, bucket and balances."""
    for n, inst in enumerate(installments):
        for name in ("principal_due", "interest_due", "fee_due"):
            _check_amount(getattr(inst, name), f"installments[{n}].{name}")
    if len({inst.seq for inst in installments}) != len(installments):
        raise BadInput("installment seq numbers must be distinct", field="installments")
    for n, pay in enumerate(payments):
        _check_amount(pay.amount, f"payments[{n}].amount")

    ordered = sorted(installments, key=lambda i: (i.due_date, i.seq))
    # Remaining [fee, interest, principal] per installment, in the order money covers them.
    remaining = [[i.fee_due, i.interest_due, i.principal_due] for i in ordered]
    paid_off: list[date | None] = [None] * len(ordered)
    counted = sorted((p for p in payments if p.paid_on <= as_of), key=lambda p: p.paid_on)
    cursor, credit = 0, ZERO
    for pay in counted:
        money = pay.amount
        while money > 0 and cursor < len(ordered):
            parts = remaining[cursor]
            for k in range(3):
                take = min(money, parts[k])
                parts[k] -= take
                money -= take
            if sum(parts) == 0:
                if ordered[cursor].total_due > 0:
                    paid_off[cursor] = pay.paid_on
                cursor += 1
        credit += money
    while cursor < len(ordered) and sum(remaining[cursor]) == 0:  # zero-due installments
        cursor += 1

    states = tuple(
        InstallmentState(
            seq=inst.seq, due_date=inst.due_date,
            fee_paid=inst.fee_due - fee, interest_paid=inst.interest_due - interest,
            principal_paid=inst.principal_due - principal, outstanding=fee + interest + principal,
            paid_off_on=paid_off[n],
        )
        for n, (inst, (fee, interest, principal)) in enumerate(zip(ordered, remaining, strict=True))
    )
    oldest = ordered[cursor].due_date if cursor < len(ordered) else None
    dpd = (as_of - oldest).days if oldest is not None and oldest < as_of else 0
    outstanding = [sum((r[k] for r in remaining), ZERO) for k in range(3)]
    return Delinquency(
        as_of=as_of,
        dpd=dpd,
        bucket=buckets.closed if oldest is None else buckets.bucket(dpd),
        oldest_unpaid_due_date=oldest,
        outstanding_principal=outstanding[2],
        outstanding_interest=outstanding[1],
        outstanding_fees=outstanding[0],
        overdue_amount=sum((s.outstanding for s in states if s.due_date < as_of), ZERO),
        paid_total=sum((p.amount for p in counted), ZERO),
        credit=credit,
        installments=states,
    )
