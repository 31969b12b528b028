"""The lending practice behind the debt: 砍头息 loans, their true cost, the lender, the contact list.

``借1000到手700，7天还1000`` is an advance of 1,000 with 300 deducted up front (砍头息) and one
payment of 1,000 seven days later. Its APR comes from ``domain/apr.py`` (Regulation Z Appendix J,
the term as the unit-period): 2,234.69%. Above 36% a loan from an unlicensed lender is an illegal
debt; the lender's type is taken only from what the text says (``没有放贷资质`` -> unlicensed,
``银行`` -> licensed institution, ``小贷公司`` -> small-loan company) and is otherwise unknown.

``不授权通讯录就不让借`` (no contact list, no loan) is a practice finding of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from collectguard.domain.apr import apr
from collectguard.errors import BadInput
from collectguard.rules.extract.numerals import AMOUNT, NUMBER, amount_value, number_value

__all__ = ["CONTACT_LIST_REQUIRED", "Lending", "find_lending"]


@dataclass(frozen=True)
class Lending:
    """What a description says about the loan (``None``: not said)."""

    advance: Decimal | None = None
    received: Decimal | None = None
    repay: Decimal | None = None
    term_days: int | None = None
    apr: float | None = None
    lender_type: str | None = None
    contact_list_required: bool = False
    evidence: tuple[str, ...] = ()

    @property
    def upfront_fees(self) -> Decimal | None:
        """The part of the advance deducted before the money reached the borrower (砍头息)."""
        if self.advance is None or self.received is None:
            return None
        return self.advance - self.received

    def to_dict(self) -> dict[str, Any]:
        """JSON shape: amounts as strings, APR in percent (2 decimals)."""
        def s(x: Decimal | None) -> str | None:
            return None if x is None else format(x.normalize(), "f")

        return {"advance": s(self.advance), "received": s(self.received),
                "upfront_fees": s(self.upfront_fees),
                "repay": s(self.repay), "term_days": self.term_days, "apr": self.apr,
                "lender_type": self.lender_type, "contact_list_required": self.contact_list_required}


def _a(name: str) -> str:
    return f"(?P<{name}>{AMOUNT})"


_RECEIVED = r"(?:实际)?(?:只)?(?:到手|到账|拿到手?|拿到了|给了|打款|下款|放款)(?:了|只有|才)?"
_ZH_LOAN = re.compile(
    rf"借(?:了|款)?\s?{_a('adv')}.{{0,10}}?{_RECEIVED}\s?{_a('recv')}"
    rf"(?:.{{0,12}}?(?P<days>{NUMBER})\s?天(?:后|内|之后|就|期|到期)?.{{0,6}}?还(?:款)?(?:了)"
    rf"?\s?{_a('repay')}"
    rf"|.{{0,12}}?还(?:款)?\s?{_a('repay2')}.{{0,6}}?(?P<days2>{NUMBER})\s?天)?"
)
_EN_LOAN = re.compile(
    rf"borrow(?:ed)?\s{_a('adv')}.{{0,50}}?(?:received|got|was given|was paid|credited|deposited)(?: only)?"
    rf"(?: with)?\s{_a('recv')}"
    rf"(?:.{{0,50}}?(?:repay|pay back|pay|return|owe)(?: back)?\s{_a('repay')}"
    rf"(?: (?:in|after|within)\s(?P<days>{NUMBER}) days)?)?"
)
_ZH_FEE_LOAN = re.compile(
    rf"借(?:了|款)?\s?{_a('adv')}.{{0,10}}?(?:砍头息|手续费|服务费|扣了|先扣)\s?{_a('fee')}"
    rf"(?:.{{0,12}}?(?P<days>{NUMBER})\s?天(?:后|内|之后|就|期|到期)?.{{0,6}}?还(?:款)?(?:了)"
    rf"?\s?{_a('repay')})?"
)
_EN_DAYS = re.compile(rf"(?P<days>{NUMBER})[- ]days?")
_UPFRONT = re.compile(rf"砍头息\s?{_a('fee')}|upfront fee of\s{_a('fee2')}")
_LENDERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("unlicensed", re.compile(r"没有?(?:放贷|金融|经营)?(?:资质|牌照|执照)|无(?:放贷)?资质|无牌|"
                              r"非法(?:放贷|平台|网贷)|黑(?:网贷|平台|口子)|"
                              r"高炮|714|套路贷|unlicensed|no licen[cs]e|illegal lender|loan shark")),
    ("small_loan_company", re.compile(r"小贷公司|小额贷款公司|small[- ]loan company|microlender")),
    ("licensed_institution", re.compile(r"银行(?!卡)|消费金融公司|持牌|信用卡|licensed (?:bank|lender)|"
                                        r"\bbank\b")),
    ("private", re.compile(r"私人(?:放贷|借款|借给)|个人借给|民间借贷|private lender|a friend lent")),
)
CONTACT_LIST_REQUIRED = re.compile(
    r"(?:不|没)(?:授权|给|开|同意|允许)(?:读取)?通讯录(?:权限)?(?:就|便)?(?:不让|不能|不给|没法|无法|"
    r"借不了|不放款|不下款)|"
    r"(?:必须|强制|要求|一定要|得)(?:先)?(?:授权|读取|上传|开放|同意)(?:读取)?通讯录(?:权限)?(?:才|才能|"
    r"才可以|才给|否则)?|"
    r"通讯录(?:权限)?(?:是)?(?:必须|强制)(?:授权|开启)|"
    r"(?:required|forced me to give|had to (?:give|allow|grant)|made me (?:give|grant|share)) (?:access to "
    r"|the app )?"
    r"(?:access to )?my (?:contacts|contact list|phone ?book)|"
    r"(?:wouldn't|would not|won't|refused to) (?:lend|give me the loan|approve)[^.]{0,40}unless[^.]{0,"
    r"40}contacts"
)


def _amount(m: re.Match[str], *names: str) -> Decimal | None:
    for n in names:
        v = m.groupdict().get(n)
        if v:
            return amount_value(v)
    return None


def _apr(advance: Decimal, received: Decimal, repay: Decimal, days: int, as_of: date) -> float | None:
    """The Appendix J APR of a one-payment loan with fees deducted up front, or ``None``."""
    if not (Decimal(0) < received <= advance) or days <= 0 or repay <= 0:
        return None
    loan = {"advance": str(advance), "advance_date": as_of.isoformat(),
            "upfront_fees": str(advance - received),
            "payments": [{"date": (as_of + timedelta(days=days)).isoformat(), "amount": str(repay)}]}
    try:
        value = apr(loan)["apr"]
    except BadInput:
        return None
    return float(value)


def find_lending(text: str, *, as_of: date) -> Lending | None:
    """The lending facts in a whole normalised description, or ``None`` when it says nothing of them."""
    evidence: list[str] = []
    advance = received = repay = None
    days: int | None = None
    m = _ZH_LOAN.search(text) or _ZH_FEE_LOAN.search(text) or _EN_LOAN.search(text)
    if m is not None:
        evidence.append(m.group(0))
        advance, received = _amount(m, "adv"), _amount(m, "recv")
        fee_in_loan = _amount(m, "fee")
        if received is None and advance is not None and fee_in_loan is not None:
            received = advance - fee_in_loan
        repay = _amount(m, "repay", "repay2")
        d = m.groupdict().get("days") or m.groupdict().get("days2")
        if d is None and m.re is _EN_LOAN:
            found = _EN_DAYS.search(text, m.start())
            d = found.group("days") if found else None
        days = number_value(d) if d else None
    fee = _UPFRONT.search(text)
    if fee is not None and advance is not None and received is None:
        upfront = _amount(fee, "fee", "fee2")
        received = None if upfront is None else advance - upfront
    lender = next((name for name, p in _LENDERS if p.search(text)), None)
    required = CONTACT_LIST_REQUIRED.search(text)
    if required is not None:
        evidence.append(required.group(0))
    if m is None and lender is None and required is None:
        return None
    value = None
    if advance is not None and received is not None and repay is not None and days is not None:
        value = _apr(advance, received, repay, days, as_of)
    return Lending(advance=advance, received=received, repay=repay, term_days=days, apr=value,
                   lender_type=lender,
                   contact_list_required=required is not None, evidence=tuple(evidence))
