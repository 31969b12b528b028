"""QA of transcripts (pure): realistic zh/en calls and chats, conversational state, spans, the model.

Samples live in tests/data/transcripts: ``unlawful__<name>__<lang>.json`` and ``lawful__…``, each
``{"title", "input": <transcript>, "expected_verdict", "expected_findings": [{rule, turn,
citations_include}]}``. Every expected finding must be there with those citations; a lawful
sample must have no finding at all. ``all.jsonl`` holds every sample's input, one per line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collectguard.domain.transcript import Transcript, parse_transcript, parse_transcript_json
from collectguard.errors import BadInput
from collectguard.rules import Guard
from collectguard.rules.qa import SEVERITY, qa_check, severity_of

DATA = Path(__file__).parents[1] / "data" / "transcripts"
SAMPLES = sorted(DATA.glob("*.json"))
UNLAWFUL = [p for p in SAMPLES if p.name.startswith("unlawful__")]
LAWFUL = [p for p in SAMPLES if p.name.startswith("lawful__")]
CONTRACT = Path(__file__).resolve().parents[3] / "shared" / "examples" / "transcript-clean.json"
CN = Guard.from_packs(["CN"])


def sample(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def call(*turns: tuple[str, str], **fields) -> Transcript:
    """A CN call at 10:00 Beijing time to the borrower unless ``fields`` say otherwise; C/R speakers."""
    body = {"jurisdiction": "CN", "channel": "call", "time": "2026-04-07T10:00:00+08:00",
            "recipient": {"role": "borrower"}, **fields}
    body["turns"] = [{"speaker": "collector" if who == "C" else "recipient", "t": 3.0 * i, "text": text}
                     for i, (who, text) in enumerate(turns)]
    return parse_transcript(body)


def rules_by_turn(result) -> set[tuple[str, int | None]]:
    return {(f.rule, f.turn) for f in result.findings}


THIRD_PARTY = {"recipient": {"role": "emergency_contact", "source": "borrower_designated"}, "purpose": "locate",
               "history": {"borrower_unreachable": True}}


# ---- the samples ------------------------------------------------------------------------------------

def test_there_are_enough_realistic_samples_in_both_languages():
    assert len(UNLAWFUL) >= 10 and len(LAWFUL) >= 6
    for group in (UNLAWFUL, LAWFUL):
        assert any(p.stem.endswith("__zh") for p in group) and any(p.stem.endswith("__en") for p in group)
    lines = [json.loads(x) for x in (DATA / "all.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    assert lines == [sample(p)["input"] for p in SAMPLES]  # the JSON Lines file follows the samples


@pytest.mark.parametrize("path", UNLAWFUL, ids=lambda p: p.stem)
def test_each_violation_is_flagged_with_its_citation(path):
    case = sample(path)
    tr = parse_transcript(case["input"])
    result = qa_check(tr)
    assert result.verdict == "violations" == case["expected_verdict"]
    by_key = {(f.rule, f.turn): f for f in result.findings}
    for want in case["expected_findings"]:
        found = by_key.get((want["rule"], want["turn"]))
        assert found is not None, (want, sorted(by_key, key=str))
        assert set(want["citations_include"]) <= set(found.citations)
    for f in result.findings:
        assert f.citations and f.message_zh and f.message_en and f.severity in {"critical", "major", "minor"}
        if f.turn is None:
            assert f.span is None  # a finding about the call as a whole
        else:
            assert tr.turns[f.turn].speaker == "collector"  # only the collector's turns can violate
            a, b = f.span
            assert 0 <= a < b <= len(tr.turns[f.turn].text) and tr.turns[f.turn].text[a:b] == f.text
    assert result.score < 100 and result.severity is not None


@pytest.mark.parametrize("path", LAWFUL, ids=lambda p: p.stem)
def test_lawful_calls_are_clean(path):
    case = sample(path)
    result = qa_check(parse_transcript(case["input"]))
    assert case["expected_verdict"] == "clean"
    assert result.verdict == "clean" and result.findings == (), [(f.rule, f.turn, f.text) for f in result.findings]
    assert result.score == 100 and result.severity is None


def test_the_contract_example_is_clean():
    if not CONTRACT.exists():
        pytest.skip("the shared contract examples are not beside the project")
    example = json.loads(CONTRACT.read_text(encoding="utf-8"))
    assert qa_check(parse_transcript(example["input"])).verdict == example["expected_verdict"] == "clean"


def test_the_same_transcript_gives_the_same_result():
    tr = parse_transcript(sample(UNLAWFUL[0])["input"])
    assert qa_check(tr) == qa_check(tr) == qa_check(tr, Guard.default())


# ---- who can violate, and the call as a whole -------------------------------------------------------------

def test_a_recipient_turn_never_violates():
    result = qa_check(call(("C", "您好，您的借款已逾期3天，应还860元。"), ("R", "你们这帮骗子，再打我就弄死你！")), CN)
    assert result.verdict == "clean"


def test_event_level_rules_apply_once_with_turn_null():
    result = qa_check(call(("C", "您好，您的借款已逾期。"), ("C", "请尽快还款。"),
                           time="2026-04-07T23:10:00+08:00"), CN)
    assert [(f.rule, f.turn, f.span) for f in result.findings] == [("cn.quiet_hours", None, None)]
    capped = qa_check(call(("C", "您好，还是关于您的借款。"), history={"connected_calls_today": 3}), CN)
    assert rules_by_turn(capped) == {("cn.connected_calls_cap", None)}


def test_findings_are_deduplicated_per_rule_and_turn():
    result = qa_check(call(("C", "你这个老赖，骗子，不要脸！"), ("C", "老赖。")), CN)
    assert sorted(rules_by_turn(result), key=str) == [("cn.conduct.insult", 0), ("cn.conduct.insult", 1)]
    first = next(f for f in result.findings if f.turn == 0)
    assert first.span == (3, 5) and first.text == "老赖"  # the earliest phrase behind the rule


def test_reported_conduct_is_a_whole_call_finding():
    result = qa_check(call(("C", "您好。"), conduct=["threat"]), CN)
    assert rules_by_turn(result) == {("cn.conduct.threat", None)}


def test_a_jurisdiction_without_a_pack_fails_closed():
    result = qa_check(call(("C", "Hello."), jurisdiction="US"), CN)
    assert rules_by_turn(result) == {("engine.no_pack", None)} and result.verdict == "violations"


# ---- conversational state ------------------------------------------------------------------------------

def test_pressing_a_debtor_after_a_stop_request_is_flagged_and_an_acknowledgement_is_not():
    pressed = qa_check(call(("C", "您的借款已逾期。"), ("R", "别再打了！"), ("C", "你今天必须还，别挂！")), CN)
    assert rules_by_turn(pressed) == {("cn.qa.pressing_after_stop", 2)}
    f = pressed.findings[0]
    assert f.citations == ("CN:CC:1033",) and f.severity == "critical" and f.text == "今天必须"
    polite = qa_check(call(("C", "您的借款已逾期。"), ("R", "别再打了！"),
                           ("C", "好的，已记录，之后短信提醒您还款，再见。")), CN)
    assert polite.verdict == "clean" and [s.kind for s in polite.signals] == ["stop"]


def test_after_a_second_refusal_any_demand_for_payment_is_pressing():
    result = qa_check(call(("C", "您的借款已逾期。"), ("R", "别打了。"), ("C", "好的，不过还款的事您看什么时候？"),
                           ("R", "不要再给我打电话了！"), ("C", "好的，那还款什么时候？")), CN)
    assert rules_by_turn(result) == {("cn.qa.pressing_after_stop", 4)}


def test_an_offer_to_pay_after_a_refusal_reopens_the_conversation():
    result = qa_check(call(("C", "您的借款已逾期。"), ("R", "别打了……算了，我周五还吧。"),
                           ("C", "好的，那周五必须还上哦。")), CN)
    kinds = {s.kind for s in result.signals}
    assert {"stop", "offer_to_pay"} <= kinds
    assert result.verdict == "clean"  # in one turn, the later word counts
    later = qa_check(call(("C", "您的借款已逾期。"), ("R", "别打了。"), ("C", "好的。"), ("R", "算了，我周五还吧。"),
                          ("C", "好的，那周五必须还上哦。")), CN)
    assert later.verdict == "clean"
    reverse = qa_check(call(("C", "您的借款已逾期。"), ("R", "我周五还，别再打了。"), ("C", "周五必须还上！")), CN)
    assert rules_by_turn(reverse) == {("cn.qa.pressing_after_stop", 2)}


def test_a_third_party_who_refused_is_protected_by_the_packs_refusal_rule():
    result = qa_check(call(("C", "您好，麻烦您转告张三回电。"), ("R", "我不认识他，别再打了。"),
                           ("C", "你赶紧找到他！"), **THIRD_PARTY), CN)
    refused = next(f for f in result.findings if f.rule == "cn.third_party.refused")
    assert refused.turn == 2 and {"CN:GBT45251", "CN:CBA2026", "CN:PIPL:44", "CN:CC:1033"} <= set(refused.citations)


def test_wrong_number_on_a_borrower_call_makes_debt_details_disclosure():
    result = qa_check(call(("C", "是林涛吗？"), ("R", "你打错了。"), ("C", "不好意思，林涛在我们这的借款逾期了。")), CN)
    assert ("cn.third_party.disclosure", 2) in rules_by_turn(result)
    sorry = qa_check(call(("C", "是林涛吗？"), ("R", "你打错了。"), ("C", "不好意思打扰了，再见。")), CN)
    assert sorry.verdict == "clean"


def test_a_volunteer_payer_may_be_told_what_is_needed_to_pay():
    volunteer = qa_check(call(("C", "您好，麻烦您转告他回电。"), ("R", "他欠多少？我替他还吧。"),
                              ("C", "应还4200元，可在App代还。"), **THIRD_PARTY), CN)
    assert volunteer.verdict == "clean"
    unasked = qa_check(call(("C", "您好，他在我们这欠了4200元，逾期了。"), **THIRD_PARTY), CN)
    assert rules_by_turn(unasked) == {("cn.third_party.disclosure", 0)}


def test_asking_a_third_party_to_pay_is_collecting_from_them():
    result = qa_check(call(("C", "您是他父亲，您先帮他把钱还了吧。"), **THIRD_PARTY), CN)
    assert {("cn.third_party.purpose", 0), ("cn.third_party.disclosure", 0)} <= rules_by_turn(result)
    assert next(f for f in result.findings if f.rule == "cn.third_party.purpose").category == "third_party_pay_request"
    to_borrower = qa_check(call(("C", "您可以让家人帮您还。")), CN)
    assert to_borrower.verdict == "clean"  # said to the debtor it is not collecting from a third party


@pytest.mark.parametrize("text", [
    "我们一直打不通您的电话，今天终于联系上了。", "如果确实有困难，可以申请延期还款或者分期。",
    "我们不会联系您的家人和单位，请放心。", "根据合同约定，逾期记录会上报征信。",
    "法院起诉是我们依法享有的权利，但我们更希望协商解决。", "您也可以通过官方客服热线核实我的身份。",
    "We will not contact your family or employer.", "If you have difficulty paying, we can offer an instalment plan.",
])
def test_lawful_collector_phrases_stay_clean(text):
    assert qa_check(call(("C", text)), CN).verdict == "clean"


@pytest.mark.parametrize(("text", "rule"), [
    ("我是某某律师事务所的王律师。", "cn.conduct.impersonate_authority"),
    ("This is your attorney calling about the loan.", "cn.conduct.impersonate_authority"),
    ("法院传票明天就寄到你家。", "cn.conduct.false_legal_claim"),
    ("律师函上盖了法院的公章。", "cn.conduct.fake_documents"),
    ("不还的话我们就每天打给你。", "cn.conduct.threat"),
    ("We will keep calling you until you pay.", "cn.conduct.threat"),
])
def test_the_phrases_the_lexicons_lack_are_judged_by_the_packs_rules(text, rule):
    assert (rule, 0) in rules_by_turn(qa_check(call(("C", text)), CN))


# ---- severities and scores ----------------------------------------------------------------------------------

def test_severities_are_data_with_a_fallback_from_the_rule_kind():
    assert SEVERITY["cn.conduct.threat"] == "critical" and SEVERITY["cn.quiet_hours"] == "major"
    assert severity_of("cn.outsourcing.notice") == "minor" and severity_of("xx.unknown") == "minor"
    pack = CN.packs["CN"]
    assert severity_of("cn.conduct.insult", pack) == "major"
    result = qa_check(call(("C", "你这个老赖。"), time="2026-04-07T22:30:00+08:00"), CN)
    assert result.severity == "major" and result.score == 100 - 15 - 15


# ---- the transcript model ---------------------------------------------------------------------------------

GOOD = {"jurisdiction": "CN", "channel": "im", "time": "2026-04-07T10:00:00+08:00", "recipient": {"role": "borrower"},
        "turns": [{"speaker": "collector", "t": 0, "text": "您好"}]}


@pytest.mark.parametrize(("patch", "field"), [
    ({"message": "hi"}, "message"),
    ({"turns": []}, "turns"),
    ({"extra": 1}, "extra"),
    ({"turns": [{"speaker": "bot", "t": 0, "text": "x"}]}, "turns.0.speaker"),
    ({"turns": [{"speaker": "collector", "t": -1, "text": "x"}]}, "turns.0.t"),
    ({"turns": [{"speaker": "collector", "t": "3", "text": "x"}]}, "turns.0.t"),
    ({"turns": [{"speaker": "collector", "t": 1, "text": "x", "lang": "zh"}]}, "turns.0.lang"),
    ({"time": "2026-04-07T10:00:00"}, "time"),
    ({"collector": {"kind": "agency", "name": "x"}}, "collector.name"),
    ({"case_id": "7"}, "case_id"),
])
def test_bad_transcripts_are_refused_naming_the_field(patch, field):
    with pytest.raises(BadInput) as err:
        parse_transcript({**GOOD, **patch}, line=4)
    assert err.value.field == field and err.value.line == 4
    with pytest.raises(BadInput) as err:
        parse_transcript_json(json.dumps({**GOOD, **patch}), line=9)
    assert err.value.field == field and err.value.line == 9


def test_the_documented_extensions_are_accepted_and_left_out_of_the_event():
    tr = parse_transcript({**GOOD, "id": "rec-1", "case_id": 7, "collector": {"kind": "agency", "id": "agent-7"}})
    assert (tr.id, tr.case_id, tr.collector.id) == ("rec-1", 7, "agent-7")
    event = tr.event()
    assert event.message is None and event.collector.kind == "agency" and not hasattr(event.collector, "id")
    result = qa_check(tr, CN)
    assert (result.id, result.case_id) == ("rec-1", 7)
    with pytest.raises(BadInput) as err:
        parse_transcript({**GOOD, "extra": 1}, prefix="3")
    assert err.value.field == "3.extra"


def test_in_a_call_required_words_may_come_in_another_turn():
    guard = Guard.default()
    if "US" not in guard.packs:
        pytest.skip("no US pack")
    us = {"jurisdiction": "US", "time": "2026-04-07T10:00:00-05:00", "debt": {"validation_notice_sent": True}}
    said = call(("C", "This is Apex Collections, a debt collector."), ("C", "Your balance is $500, when can you pay?"),
                **us)
    assert not [f for f in qa_check(said, guard).findings if "US:REGF:1006.18(e)" in f.citations]
    never = call(("C", "Hello Mr. Smith."), ("C", "Your balance is $500, when can you pay?"), **us)
    missing = [f for f in qa_check(never, guard).findings if "US:REGF:1006.18(e)" in f.citations]
    assert [f.turn for f in missing] == [1]
    chat = call(("C", "This is Apex Collections, a debt collector."), ("C", "Your balance is $500, when can you pay?"),
                channel="im", collector={"opt_out_included": True}, **us)
    # In a chat each message is a communication of its own.
    assert [f.turn for f in qa_check(chat, guard).findings if "US:REGF:1006.18(e)" in f.citations] == [1]
