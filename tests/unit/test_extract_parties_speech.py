"""Who was contacted, how, what was said, and what the borrower agreed to (rules/extract/…)."""

from __future__ import annotations

import pytest

from collectguard.rules.extract.channels import find_channels
from collectguard.rules.extract.consent import Statements, find_statements
from collectguard.rules.extract.normalise import normalise
from collectguard.rules.extract.parties import borrower_addressed, find_parties
from collectguard.rules.extract.speech import find_speech, without_threats


def parties(text: str) -> list[tuple[str, str | None, int]]:
    found, _ = find_parties(normalise(text))
    return [(p.role, p.source, p.count) for p in found]


@pytest.mark.parametrize(("text", "expected"), [
    ("给我通讯录里的人发短信", [("contact_list_entry", "contact_list", 2)]),
    ("通讯录好友都收到了", [("contact_list_entry", "contact_list", 2)]),
    ("所有联系人", [("contact_list_entry", "contact_list", 2)]),
    ("通讯录里三十多个人", [("contact_list_entry", "contact_list", 30)]),
    ("通讯录里的同事", [("colleague", "contact_list", 1)]),
    ("从我通讯录里找到我的同事", [("colleague", "contact_list", 1)]),
    ("打给我紧急联系人", [("emergency_contact", "borrower_designated", 1)]),
    ("给我妈打电话", [("relative", None, 1)]), ("我爸", [("relative", None, 1)]),
    ("家人", [("relative", None, 1)]), ("亲戚们", [("relative", None, 2)]),
    ("老婆", [("spouse", None, 1)]), ("我老公", [("spouse", None, 1)]), ("妻子", [("spouse", None, 1)]),
    ("同事", [("colleague", None, 1)]), ("领导", [("employer", None, 1)]), ("单位", [("employer", None, 1)]),
    ("朋友", [("other_third_party", None, 1)]), ("发到群里", [("public", None, 1)]),
    ("发到我们公司的工作群里", [("public", None, 1)]),  # the company only names the group
    ("催收公司打电话", []),  # the collector, not a recipient
    ("my sister", [("relative", None, 1)]), ("my boss", [("employer", None, 1)]),
    ("my contacts", [("contact_list_entry", "contact_list", 2)]),
    ("everyone in my contacts", [("contact_list_entry", "contact_list", 2)]),
    ("my coworkers", [("colleague", None, 2)]), ("my parents", [("relative", None, 2)]),
    ("through a loan app", []),  # "hr" only as a word
])
def test_find_parties(text: str, expected: list[tuple[str, str | None, int]]) -> None:
    assert parties(text) == expected


@pytest.mark.parametrize(("text", "borrower"), [
    ("晚上十一点半给我打电话", True), ("他们给我妈打电话", False), ("给我和我妈都打了电话", True),
    ("他们给我通讯录里的人发短信", False), ("骂我是老赖", True), ("一个人上门堵我", True),
    ("they called me", True), ("they called my sister", False), ("i answered", True),
])
def test_borrower_addressed(text: str, borrower: bool) -> None:
    _, masked = find_parties(normalise(text))
    assert borrower_addressed(masked) is borrower


@pytest.mark.parametrize(("text", "discloses", "conduct", "purpose"), [
    ("说我欠钱不还", {"debt_existence"}, set(), None),
    ("没有说我欠钱", set(), set(), None),
    ("跟我妈说我没还钱，欠了5000块", {"debt_existence", "debt_amount"}, set(), None),
    ("把我的欠款金额8000元发给了", {"debt_existence", "debt_amount"}, set(), None),
    ("逾期后他们就发了短信", set(), set(), None),  # the borrower's state, not what was said
    ("骂我是老赖", {"debt_existence"}, {"insult"}, None),
    ("说我是骗子", set(), {"insult"}, None),
    ("自称是法院的", set(), {"impersonate_authority"}, None),
    ("冒充警察", set(), {"impersonate_authority"}, None),
    ("对方自称律师", set(), {"impersonate_authority"}, None),
    ("说要让我坐牢", set(), {"false_legal_claim"}, None),
    ("说要依法起诉我", set(), set(), None),  # a lawful statement
    ("威胁我", set(), {"threat"}, None),
    ("态度很好，没有威胁", set(), set(), None),
    ("说再不还就爆你通讯录", {"debt_existence"}, {"threat"}, None),
    ("把照片P成通缉令", set(), {"fake_documents", "false_legal_claim"}, None),
    ("跟踪我上下班", set(), {"stalking"}, None),
    ("要收500元上门费", set(), {"extra_fees"}, None),
    ("让我去别的平台借钱还他们", set(), {"induce_borrowing"}, None),
    ("动手打了我", set(), {"violence"}, None),
    ("让我妈帮我还钱", {"debt_existence"}, set(), "collect"),
    ("问我的新手机号", set(), set(), "locate"),
    ("只问能不能联系上我", set(), set(), "locate"),
    ("they said i owe $500", {"debt_existence", "debt_amount"}, set(), None),
    ("didn't mention the debt", set(), set(), None),
    ("called me a deadbeat", {"debt_existence"}, {"insult"}, None),
    ("called me at 11 pm", set(), set(), None),
    ("pretended to be from the police", set(), {"impersonate_authority"}, None),
    ("said i would be arrested", set(), {"false_legal_claim"}, None),
])
def test_find_speech(text: str, discloses: set[str], conduct: set[str], purpose: str | None) -> None:
    sp = find_speech(normalise(text))
    assert (sp.discloses, sp.conduct, sp.purpose) == (discloses, conduct, purpose)


@pytest.mark.parametrize(("text", "said"), [
    ("说再不还钱就通知我单位和家人", "就通知你单位和家人"),
    ("they threatened to tell my boss and my family", "threatened to tell your boss and your family"),
])
def test_a_disclosure_threat_is_passed_on_in_the_collectors_words(text: str, said: str) -> None:
    sp = find_speech(normalise(text))
    assert said in sp.said and "threat" in sp.conduct
    # The people named in the threat were not contacted.
    assert find_parties(without_threats(normalise(text)))[0] == []


@pytest.mark.parametrize(("text", "channels", "visitors", "conduct"), [
    ("晚上给我打电话", ["call"], None, set()),
    ("给我通讯录里的人发短信", ["sms"], None, set()),
    ("发微信骂我", ["im"], None, set()),
    ("发到群里", ["public_post"], None, set()),
    ("一个人上门堵门不走", ["visit"], 1, {"restrict_liberty"}),
    ("两个人来我家", ["visit"], 2, set()),
    ("他们闯进我家", ["visit"], None, {"enter_home"}),
    ("一群人上门", ["visit"], 3, set()),
    ("发到我们公司的工作群里", ["public_post"], None, set()),  # "到…公司" is no visit here
    ("two men came to my house and refused to leave", ["visit"], 2, {"restrict_liberty"}),
    ("they texted my sister", ["sms"], None, set()),
    ("寄了律师函", ["letter"], None, set()),
])
def test_find_channels(text: str, channels: list[str], visitors: int | None, conduct: set[str]) -> None:
    ch = find_channels(normalise(text))
    assert (ch.channels, ch.visitors, ch.conduct) == (channels, visitors, conduct)


@pytest.mark.parametrize(("text", "expected"), [
    ("我没同意", {"contact_list_consent": "none", "third_party_consent": "none"}),
    ("我没同意他们联系我家人", {"third_party_consent": "none"}),
    ("注册时授权了通讯录", {"contact_list_consent": "bundled"}),
    ("我单独同意过", {"contact_list_consent": "separate"}),
    ("我撤回了授权", {"withdrawn": True}),
    ("我明确告诉他们不要再联系我", {"no_contact_requested": True}),
    ("我妈让他们别再打了", {"no_contact_requested": True}),
    ("只问能不能联系上我", {}),  # a question, not a refusal
    ("我一直都能接电话", {"reachable": True}),
    ("我没有失联", {"reachable": True}),
    ("我换号了", {"reachable": False}),
    ("我手机停机了好几天", {"reachable": False}),
    ("他们说联系不上我", {}),  # the collector's claim
    ("我们约定过时间", {"agreed_hours_hint": True}),
    ("我从来没有同意过晚上打电话", {"agreed_hours_none": True}),
    ("我已经还清了", {"debt_status": "paid"}),
    ("催收公司打电话", {"agency": True}),
    ("i never agreed", {"contact_list_consent": "none", "third_party_consent": "none"}),
    ("i told them to stop calling", {"no_contact_requested": True}),
    ("i always answer", {"reachable": True}),
])
def test_find_statements(text: str, expected: dict[str, object]) -> None:
    st = find_statements(normalise(text))
    defaults = vars(Statements())
    said = {k: v for k, v in vars(st).items() if v != defaults[k] and k != "repeated"}
    assert said == expected
