"""Legal caps on the cost of credit (law/CATALOGUE.md §1c) and the claimable part of a debt.

* ``private`` lenders: the agreed rate, and separately overdue interest + penalty + other fees
  together, may not exceed 4 x the one-year LPR at signing (SPC private-lending provisions arts 25
  and 29); above it the debt is ``over_cap`` and only the capped part may be claimed.
* ``unlicensed`` lending: as private lending, and an actual APR above 36% makes the debt
  ``illegal`` (2019 SPC/SPP opinion on illegal lending); what stays claimable is the part within
  the 4 x LPR cap.
* ``small_loan_company`` (and the other local financial organisations of 法释〔2020〕27号) and
  ``licensed_institution``: not under the 4 x LPR cap; above the 24% reference courts may adjust
  the cost, which is a warning (Y2), never a change of status.

Rates are annual percentages (``Decimal("24")`` is 24% p.a.). Thresholds and citation ids come in
a :class:`CapPolicy` so a rule pack can supply its own.

Claimable interest over a schedule (the money convention): simple interest at the cap rate, per
day at rate / 365, on the principal actually lent (the advance less upfront fees, 砍头息, which are
counted as a charge) still outstanding under the contractual schedule, from disbursement to each
due date in turn. Charged = upfront fees + scheduled interest + scheduled fees + overdue charges.
Only the contractual schedule is covered: time a borrower spends overdue beyond the last due date
earns nothing here, which errs toward the borrower.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any, Literal, get_args

from collectguard.domain.delinquency import Installment
from collectguard.domain.money import ZERO, format_amount, quantize
from collectguard.errors import BadInput

LenderType = Literal["licensed_institution", "small_loan_company", "private", "unlicensed"]
Status = Literal["valid", "over_cap", "illegal"]

#: The 4 x LPR rule took over from the 24%/36% rule for contracts from this date; earlier
#: contracts fall under transitional rules that are not encoded (hence a warning).
LPR_RULE_FROM = date(2020, 8, 20)


@dataclass(frozen=True)
class CapPolicy:
    """Thresholds (percent p.a.) and citation ids of the cost caps."""

    lpr_multiple: Decimal = Decimal(4)
    reference_rate: Decimal = Decimal(24)
    illegal_rate: Decimal = Decimal(36)
    days_per_year: int = 365
    cite_agreed_rate: str = "CN:SPCLENDING:25"
    cite_overdue_total: str = "CN:SPCLENDING:29"
    cite_local_financial: str = "CN:SPC2020-27"
    cite_reference_rate: str = "CN:SPCFIN2017"
    cite_illegal_lending: str = "CN:ILL2019"


DEFAULT_POLICY = CapPolicy()


@dataclass(frozen=True)
class CapNote:
    """A warning that does not change the status (e.g. "courts may adjust")."""

    rule: str
    citations: tuple[str, ...]
    message_zh: str
    message_en: str


@dataclass(frozen=True)
class ChargeSchedule:
    """What the lender lent and charges, for the money figures of a verdict."""

    principal: Decimal  # as in the contract, before upfront fees are deducted
    disbursed_on: date
    installments: Sequence[Installment]
    upfront_fees: Decimal = ZERO
    overdue_charges: Decimal = ZERO  # overdue interest, penalties and late fees charged


@dataclass(frozen=True)
class CostCapVerdict:
    """Whether a loan's cost is within its legal cap, and what may be claimed."""

    lender_type: LenderType
    status: Status
    cap_rate: Decimal  # percent p.a.: the binding cap, or the 24% reference when not binding
    cap_binding: bool
    total_rate: Decimal  # agreed + overdue + fee rates
    claimable_rate: Decimal
    excess_rate: Decimal
    citations: tuple[str, ...]
    notes: tuple[CapNote, ...] = ()
    charged: Decimal | None = None  # the money figures need a ChargeSchedule
    claimable_interest: Decimal | None = None
    excess: Decimal | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON shape: rates and amounts as decimal strings."""
        def money(x: Decimal | None) -> str | None:
            return None if x is None else format_amount(x)

        return {
            "lender_type": self.lender_type, "status": self.status,
            "cap_rate": str(self.cap_rate), "cap_binding": self.cap_binding,
            "total_rate": str(self.total_rate), "claimable_rate": str(self.claimable_rate),
            "excess_rate": str(self.excess_rate), "citations": list(self.citations),
            "notes": [vars(n) | {"citations": list(n.citations)} for n in self.notes],
            "charged": money(self.charged), "claimable_interest": money(self.claimable_interest),
            "excess": money(self.excess),
        }


def _rate(value: Decimal | None, field: str) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise BadInput(f"expected a percentage as a Decimal of zero or more, got {value!r}", field=field)
    return value


def claimable_interest(schedule: ChargeSchedule, cap_rate: Decimal, *, days_per_year: int = 365) -> Decimal:
    """Interest at ``cap_rate`` (percent p.a.) on the principal actually lent, over the schedule."""
    lent = schedule.principal - schedule.upfront_fees
    if lent <= 0:
        raise BadInput("upfront fees must be less than the principal", field="upfront_fees")
    start, repaid, total = schedule.disbursed_on, ZERO, ZERO
    for inst in sorted(schedule.installments, key=lambda i: (i.due_date, i.seq)):
        days = (inst.due_date - start).days
        if days < 0:
            raise BadInput("an installment falls due before the disbursement", field="installments")
        total += max(lent - repaid, ZERO) * cap_rate * days / (100 * days_per_year)
        repaid += inst.principal_due
        start = inst.due_date
    return quantize(total)


def _charged(schedule: ChargeSchedule) -> Decimal:
    due = sum((i.interest_due + i.fee_due for i in schedule.installments), ZERO)
    return schedule.upfront_fees + due + schedule.overdue_charges


def assess_cost_cap(
    *,
    lender_type: str,
    agreed_rate: Decimal,
    lpr_at_signing: Decimal | None = None,
    overdue_rate: Decimal = ZERO,
    fee_rate: Decimal = ZERO,
    actual_apr: Decimal | None = None,
    signed_on: date | None = None,
    schedule: ChargeSchedule | None = None,
    policy: CapPolicy = DEFAULT_POLICY,
) -> CostCapVerdict:
    """Judge a loan's cost against the cap for its lender type (rates in percent p.a.).

    ``agreed_rate`` is the contractual interest rate, ``overdue_rate`` the overdue interest or
    penalty rate, ``fee_rate`` other fees annualised; ``actual_apr`` (e.g. from
    :func:`collectguard.domain.apr.compute_apr`) is the true annualised cost, defaulting to
    agreed + fee rates. Private and unlicensed lending need ``lpr_at_signing``.
    """
    if lender_type not in get_args(LenderType):
        raise BadInput(f"expected one of {list(get_args(LenderType))}, got {lender_type!r}",
                       field="lender_type")
    agreed = _rate(agreed_rate, "agreed_rate")
    total = agreed + _rate(overdue_rate, "overdue_rate") + _rate(fee_rate, "fee_rate")
    actual = agreed + fee_rate if actual_apr is None else _rate(actual_apr, "actual_apr")
    notes: list[CapNote] = []
    citations: list[str] = []
    status: Status = "valid"

    if lender_type in ("private", "unlicensed"):
        if lpr_at_signing is None:
            raise BadInput("is required for private and unlicensed lending", field="lpr_at_signing")
        cap, binding = _rate(lpr_at_signing, "lpr_at_signing") * policy.lpr_multiple, True
        if agreed > cap:
            citations.append(policy.cite_agreed_rate)
        if total > cap:
            citations.append(policy.cite_overdue_total)
        status = "over_cap" if citations else "valid"
        citations = citations or [policy.cite_agreed_rate, policy.cite_overdue_total]
        if signed_on is not None and signed_on < LPR_RULE_FROM:
            notes.append(CapNote(
                "cn.cost_cap.transitional", (), "2020年8月20日前成立的合同可能适用过渡期规则（未编码）。",
                "A contract made before 2020-08-20 may fall under transitional rules (not encoded)."))
        if lender_type == "unlicensed" and actual > policy.illegal_rate:
            status = "illegal"
            citations.insert(0, policy.cite_illegal_lending)
    else:
        cap, binding = policy.reference_rate, False
        citations = ([policy.cite_local_financial] if lender_type == "small_loan_company" else [])
        citations.append(policy.cite_reference_rate)
        if max(actual, total) > cap:
            notes.append(CapNote(
                "cn.cost_cap.courts_may_adjust", tuple(citations),
                f"综合资金成本超过年化{cap}%，法院可能予以调整。",
                f"The annualised cost is above {cap}%; courts may adjust it."))

    claimable_rate = min(total, cap) if binding else total
    verdict = CostCapVerdict(
        lender_type=lender_type,  # type: ignore[arg-type]  # checked against LenderType above
        status=status, cap_rate=cap, cap_binding=binding, total_rate=total,
        claimable_rate=claimable_rate, excess_rate=total - claimable_rate,
        citations=tuple(citations), notes=tuple(notes),
    )
    if schedule is None:
        return verdict
    charged = _charged(schedule)
    allowed = (min(charged, claimable_interest(schedule, cap, days_per_year=policy.days_per_year))
               if binding else charged)
    return replace(verdict, charged=charged, claimable_interest=allowed, excess=charged - allowed)
