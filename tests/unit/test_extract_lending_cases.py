"""Loan facts, contacts from clauses, and the questionnaire (rules/extract/lending, cases, form, extract)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from collectguard.domain.event import parse_event
from collectguard.rules.extract import extract
from collectguard.rules.extract.form import form_cases
from collectguard.rules.extract.lending import find_lending
from collectguard.rules.extract.normalise import normalise

AS_OF = date(2026, 4, 7)


@pytest.mark.parametrize(("text", "advance", "received", "repay", "days", "apr"), [
    ("借1000到手700，7天还1000", 1000, 700, 1000, 7, 2234.69),
    ("借1,000到手700，7天还1,000", 1000, 700, 1000, 7, 2234.69),
    ("借1000元，到手只有700元，说好7天后还1000元", 1000, 700, 1000, 7, 2234.69),
    ("借了2000元，实际到账1400元，14天后要还2000", 2000, 1400, 2000, 14, 1117.35),
    ("借2000到账1400，还款2000，期限14天", 2000, 1400, 2000, 14, 1117.35),
    ("借了3000，砍头息900，7天还3000", 3000, 2100, 3000, 7, 2234.69),
    ("借1000到手700，7天還1000", 1000, 700, 1000, 7, 2234.69),
    ("I borrowed 1000 and only received 700, and had to repay 1000 in 7 days", 1000, 700, 1000, 7, 2234.69),
])
def test_upfront_fee_loans_and_their_apr(text: str, advance: int, received: int, repay: int, days: int,
                                         apr: float) -> None:
    lending = find_lending(normalise(text), as_of=AS_OF)
    assert lending is not None
    assert (lending.advance, lending.received, lending.repay, lending.term_days) == (
        Decimal(advance), Decimal(received), Decimal(repay), days)
    assert lending.upfront_fees == Decimal(advance - received)
    assert lending.apr == apr
    assert lending.lender_type is None  # never guessed


def test_a_loan_without_its_term_has_no_apr() -> None:
    lending = find_lending(normalise("借1000到手700"), as_of=AS_OF)
    assert lending is not None and lending.apr is None and lending.upfront_fees == Decimal(300)


@pytest.mark.parametrize(("text", "lender"), [
    ("这个平台没有放贷资质", "unlicensed"), ("黑网贷", "unlicensed"), ("714高炮", "unlicensed"),
    ("小额贷款公司", "small_loan_company"), ("我在银行借的钱", "licensed_institution"),
    ("消费金融公司", "licensed_institution"), ("an unlicensed lender", "unlicensed"),
])
def test_lender_type_only_from_words(text: str, lender: str) -> None:
    lending = find_lending(normalise(text), as_of=AS_OF)
    assert lending is not None and lending.lender_type == lender


@pytest.mark.parametrize("text", ["用银行卡还款", "我逾期了", "they called me"])
def test_nothing_about_the_loan(text: str) -> None:
    assert find_lending(normalise(text), as_of=AS_OF) is None


@pytest.mark.parametrize("text", [
    "不授权通讯录就不让借", "必须授权通讯录才能借款", "借款時ＡＰＰ強制讀取通訊錄，不授權就借不了",
    "The app would not lend me money unless I gave it access to my contacts",
    "I had to give access to my contacts to get the loan",
])
def test_contact_list_required(text: str) -> None:
    lending = find_lending(normalise(text), as_of=AS_OF)
    assert lending is not None and lending.contact_list_required


def _events(text: str, **kw: object) -> list[dict[str, object]]:
    x = extract(text, as_of=AS_OF, **kw)  # type: ignore[arg-type]
    for c in x.cases:
        parse_event(c.facts)  # every contact read is a valid event
    return [c.facts for c in x.cases]


def test_one_contact_per_recipient_and_channel() -> None:
    events = _events("他们每天晚上十一点半给我打电话，还给我通讯录里的人发短信说我欠钱不还")
    assert [(e["recipient"]["role"], e["channel"]) for e in events] == [  # type: ignore[index]
        ("borrower", "call"), ("contact_list_entry", "sms")]
    assert events[0]["time"] == "2026-04-07T23:30:00+08:00"
    assert events[1]["time"] == "2026-04-07T10:00:00+08:00"  # not said: a placeholder, not stated


def test_a_clause_without_a_recipient_continues_the_last_contact() -> None:
    events = _events("他们给我同事打电话，说我欠钱不还")
    assert len(events) == 1 and events[0]["discloses"] == ["debt_existence"]


def test_statements_create_no_contact() -> None:
    assert _events("我没同意。我一直都能接电话。不授权通讯录就不让借。") == []


def test_stated_and_unknown_fields() -> None:
    x = extract("他们打电话给我的紧急联系人，问我的新手机号", as_of=AS_OF)
    (case,) = x.cases
    assert {"recipient.role", "recipient.source", "purpose", "channel"} <= case.stated
    assert "time" not in case.stated and "history.borrower_unreachable" not in case.stated


def test_borrower_reachability_is_inferred_from_a_conversation() -> None:
    events = _events("他们每天打电话骂我，还打给我妈")
    assert all(e["history"] == {"borrower_unreachable": False} for e in events)  # type: ignore[index]


def test_quoted_speech_becomes_the_message() -> None:
    events = _events("催收给我发短信说：“再不还钱就爆你通讯录”")
    assert events[0]["message"] == "再不还钱就爆你通讯录"


def test_counts_become_the_history_before_the_last_contact() -> None:
    (e,) = _events("一天打了二十多次电话给我，接通了5次")
    # Five answered calls also say the borrower could be reached.
    assert e["history"] == {"attempts_today_same_method": 19, "connected_calls_today": 4,
                            "borrower_unreachable": False}


@pytest.mark.parametrize(("text", "given", "jurisdiction"), [
    ("他们给我打电话", None, "CN"), ("they called me", None, "CN"),
    ("a debt collector called me about $500", None, "US"), ("the agency texted me that I owe €500", None, "EU"),
    ("they called me", "US", "US"),
])
def test_jurisdiction(text: str, given: str | None, jurisdiction: str) -> None:
    x = extract(text, as_of=AS_OF, jurisdiction=given)
    assert x.jurisdiction == jurisdiction
    assert x.cases[0].facts["time"].endswith({"CN": "+08:00", "US": "-05:00", "EU": "+01:00"}[jurisdiction])


def test_extraction_is_deterministic() -> None:
    text = "他们晚上十一点给我打电话骂我老赖，还给我妈和我同事发短信说我欠了5000块"
    first = extract(text, as_of=AS_OF)
    assert all(extract(text, as_of=AS_OF) == first for _ in range(3))


def test_form_pairs_become_contacts_with_shared_answers() -> None:
    cases = form_cases({"who": ["borrower", "relative"], "how": ["call", "sms"], "time": "23:10",
                        "said": ["debt_existence", "threat"], "unreachable": "no", "purpose": "collect"},
                       as_of=AS_OF, jurisdiction="CN")
    assert [(c.facts["recipient"]["role"], c.facts["channel"]) for c in cases] == [
        ("borrower", "call"), ("borrower", "sms"), ("relative", "call"), ("relative", "sms")]
    for c in cases:
        parse_event(c.facts)
        assert c.facts["time"] == "2026-04-07T23:10:00+08:00" and "time" in c.stated
        assert c.facts["conduct"] == ["threat"] and c.facts["history"]["borrower_unreachable"] is False
    assert "purpose" not in cases[0].stated and cases[2].facts["purpose"] == "collect"  # third parties only


def test_form_merges_with_the_description_and_ignores_unknown_values() -> None:
    text_cases = extract("他们给我妈打电话", as_of=AS_OF).cases
    cases = form_cases({"who": ["relative", "martian"], "how": ["call"], "unreachable": "maybe"},
                       as_of=AS_OF, jurisdiction="CN", text_cases=text_cases)
    assert len(cases) == 1 and "history.borrower_unreachable" not in cases[0].stated
