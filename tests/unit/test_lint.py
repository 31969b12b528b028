"""Message lint: normalisation, evasions, spans into the original text, false positives."""

from __future__ import annotations

import pytest

from collectguard.policy.loader import CategorySpec, LexiconSpec, PackError, load_lexicon
from collectguard.rules.lint import Linter
from collectguard.rules.normalize import normalize, normalize_all

POLITE = "您好，您的借款本期应还860元已逾期2天，请通过App还款。如有困难可申请分期。"


@pytest.fixture(scope="module")
def linter() -> Linter:
    return Linter([load_lexicon("zh"), load_lexicon("en")])


def cats(linter: Linter, message: str, *, third_party: bool = False) -> set[str]:
    return {h.category for h in linter.view(message, third_party=third_party).hits}


def test_normalize_maps_back_to_original_offsets() -> None:
    n = normalize("爆你通-讯-录！")
    assert n.text == "爆你通讯录"
    assert n.original_span(0, 5) == (0, 7)
    n = normalize("ＴＸＬ，全爆")
    assert n.text == "txl全爆"
    assert n.original_span(0, 3) == (0, 3)
    n = normalize("讓你坐牢")  # Traditional -> Simplified, same length
    assert n.text == "让你坐牢"
    n = normalize("tell,   your\temployer")
    assert n.text == "tell your employer"
    n = normalize("通\u200b讯录")  # zero-width space between characters
    assert n.text == "通讯录"
    n = normalize("①欠款")  # NFKC changes the length of nothing here but still maps
    assert n.text == "1欠款" and n.original_span(1, 3) == (1, 3)


def test_polite_reminder_is_clean_for_the_debtor(linter: Linter) -> None:
    view = linter.view(POLITE, third_party=False)
    assert view.hits == () and view.conduct == frozenset()


def test_polite_reminder_discloses_the_debt_to_a_third_party(linter: Linter) -> None:
    view = linter.view(POLITE, third_party=True)
    assert {h.category for h in view.hits} == {"debt_disclosure"}
    assert "debt_existence" in view.discloses
    assert any(h.text == "860元" for h in view.hits)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("再不還錢就讓你坐牢", {"threat", "false_legal_claim"}),
        ("爆你通-讯-录", {"disclosure_threat"}),
        ("这里是法院，你明天就会被拘留。", {"impersonate_authority", "false_legal_claim"}),
        ("不还钱就爆你的通迅录", {"disclosure_threat"}),
        ("再拖就爆你TXL", {"disclosure_threat"}),
        ("再不还钱送你坐劳", {"false_legal_claim"}),
        ("明天就拘溜你", {"false_legal_claim"}),
        ("你再不还，我们就通知你单位和家人", {"disclosure_threat"}),
        ("老赖，赶紧还钱", {"shaming"}),
        ("你个sb", {"insult"}),
        ("要么以贷养贷，要么去借高利贷", {"induce_borrowing"}),
        ("需另付催收费300元", {"extra_fees"}),
        ("你的逮捕令已经下来了", {"fake_documents", "false_legal_claim"}),
        ("這裡是公安局", {"impersonate_authority"}),
        ("这里是北京市朝阳区人民法院", {"impersonate_authority"}),
        ("发你裸照给所有人", {"obscenity"}),
        ("Pay now or we will tell your employer.", {"disclosure_threat"}),
        ("This is the police. You will be arrested.", {"impersonate_authority", "false_legal_claim"}),
        ("You deadbeat.", {"insult"}),
        ("Take out another loan to pay us.", {"induce_borrowing"}),
    ],
)
def test_findings(linter: Linter, message: str, expected: set[str]) -> None:
    assert expected <= cats(linter, message)


@pytest.mark.parametrize(
    "message",
    [
        POLITE,
        "我们不会通知您的家人，如有困难请联系客服。",
        "您的账单已逾期，若继续逾期我司将依法上报征信并提起诉讼。",
        "我们是会依法向法院起诉的，请尽快处理。",
        "我们将安排两名工作人员上门拜访，请提前告知方便的时间。",
        "本期账单可申请分期或延期，详情请登录App。",
        "We will not contact your employer.",
        "Please call us back about your account.",
        "Our office is near the casino; we never share your details.",
        "Power outage notice: the app is down.",
    ],
)
def test_no_false_positives_for_the_debtor(linter: Linter, message: str) -> None:
    assert cats(linter, message) == set()


def test_spans_point_into_the_original_message(linter: Linter) -> None:
    msg = "喂！！再不還錢就讓你坐牢，爆你通-讯-录"
    for hit in linter.lint(msg).hits:
        start, end = hit.span
        assert msg[start:end] == hit.text
    found = {h.category: h.text for h in linter.lint(msg).hits}
    assert found["disclosure_threat"] == "爆你通-讯-录"
    assert found["threat"] == "讓你坐牢"


def test_overlapping_hits_of_one_category_merge(linter: Linter) -> None:
    hits = [h for h in linter.lint("欠款¥8,000.50元").hits if h.category == "debt_disclosure"]
    assert [h.text for h in hits] == ["欠款", "¥8,000.50元"]


def test_latin_phrases_need_word_boundaries(linter: Linter) -> None:
    assert cats(linter, "the power is out", third_party=True) == set()  # "owe" inside "power"
    assert cats(linter, "he owes us", third_party=True) == {"debt_disclosure"}


def test_template_cache_keeps_each_messages_own_text(linter: Linter) -> None:
    a = linter.view("张三欠款8000元", third_party=True)
    b = linter.view("张三欠款9100元", third_party=True)
    assert [h.text for h in a.hits] == ["欠款", "8000元"]
    assert [h.text for h in b.hits] == ["欠款", "9100元"]
    assert b.hits_json.count("9100元") == 1


def test_template_cache_builds_hits_only_when_asked(linter: Linter) -> None:
    linter.view("您好，您的朋友张三在我平台欠款4000元，请转告他", third_party=True)
    message = "您好，您的朋友张三在我平台欠款5210元，请转告他"
    view = linter.view(message, third_party=True)
    fresh = Linter([load_lexicon("zh"), load_lexicon("en")]).view(message, third_party=True)
    assert view.hits_json == fresh.hits_json and "5210元" in view.hits_json
    assert view.hits == fresh.hits
    assert all(message[h.span[0] : h.span[1]] == h.text for h in view.hits)


def test_normalising_phrases_together_equals_one_by_one() -> None:
    phrases = ["再不還錢就讓你坐牢", "通 讯 录", "ＴＸＬ", "Tell your EMPLOYER", "①号", "乾淨", "后天", ""]
    for lang in ("zh", "en"):
        lex = load_lexicon(lang)
        phrases += list(lex.negators) + [t for c in lex.categories.values() for t in c.terms]
    together = normalize_all(phrases)
    assert [(n.text, n.starts) for n in together] == [(n.text, n.starts) for n in map(normalize, phrases)]


def test_lexicons_are_versioned_data() -> None:
    zh = load_lexicon("zh")
    assert zh.version and zh.language == "zh"
    assert "通迅录" in zh.variants["通讯录"]
    for name in (
        "threat",
        "insult",
        "impersonate_authority",
        "false_legal_claim",
        "disclosure_threat",
        "shaming",
        "extra_fees",
        "obscenity",
        "induce_borrowing",
    ):
        assert name in zh.categories and name in load_lexicon("en").categories


def _lexicon(**cat: object) -> LexiconSpec:
    return LexiconSpec(language="xx", version="1", categories={"c": CategorySpec.model_validate(cat)})


@pytest.mark.parametrize(
    ("cat", "match"),
    [
        ({"terms": ["欠款100"]}, "digits"),
        ({"regex": ["(unclosed"]}, "bad regex"),
        ({"conduct": ["jaywalking"], "terms": ["x"]}, "unknown conduct"),
        ({"combos": [{"prefix": ["a"]}]}, "prefix and stem"),
    ],
)
def test_bad_lexicons_fail_loudly(cat: dict[str, object], match: str) -> None:
    with pytest.raises(PackError, match=match):
        Linter([_lexicon(**cat)])
