"""The clause lint (pure): realistic zh/en samples, spans, the documented heuristics, bad pattern files.

Samples live in tests/data/clauses: ``problem__<rule>__<name>.txt`` must be flagged with
``cn.clause.<rule>`` (other findings may come with it); ``clean__<name>.txt`` must not be flagged.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collectguard.policy.loader import PackError
from collectguard.rules.clauses import ClauseLinter, lint_clauses
from collectguard.rules.clauses.spec import ClauseSpec, load_clause_spec

DATA = Path(__file__).parents[1] / "data" / "clauses"
PROBLEMS = sorted(DATA.glob("problem__*.txt"))
CLEAN = sorted(DATA.glob("clean__*.txt"))


def test_there_are_enough_samples_in_both_languages():
    assert len(PROBLEMS) >= 12 and len(CLEAN) >= 8
    for group in (PROBLEMS, CLEAN):
        assert any("zh" in p.stem for p in group) and any(p.stem.endswith("en") for p in group)
    rules = {r.id for r in load_clause_spec().rules}
    assert {f"cn.clause.{p.name.split('__')[1]}" for p in PROBLEMS} == rules  # every rule has a sample


@pytest.mark.parametrize("path", PROBLEMS, ids=lambda p: p.stem)
def test_each_problem_sample_is_flagged_with_its_rule(path):
    text = path.read_text(encoding="utf-8")
    report = lint_clauses(text)
    assert report.verdict == "problems"
    assert f"cn.clause.{path.name.split('__')[1]}" in {f.rule for f in report.findings}
    for f in report.findings:
        assert f.text == text[f.span[0] : f.span[1]]
        assert f.citations and f.message_zh and f.message_en


@pytest.mark.parametrize("path", CLEAN, ids=lambda p: p.stem)
def test_no_clean_sample_is_flagged(path):
    report = lint_clauses(path.read_text(encoding="utf-8"))
    assert report.verdict == "clean", [(f.rule, f.text) for f in report.findings]
    assert report.findings == ()


def test_output_shape_is_the_design_contract():
    out = json.loads(lint_clauses("您同意我们读取您的通讯录并用于逾期催收。").model_dump_json())
    assert set(out) == {"verdict", "findings"} and out["verdict"] == "problems"
    for f in out["findings"]:
        assert set(f) == {"rule", "citations", "span", "text", "message_zh", "message_en"}
        assert isinstance(f["span"], list) and len(f["span"]) == 2
    rules = [f["rule"] for f in out["findings"]]
    assert "cn.clause.contact_list_bundled" in rules and "cn.clause.contact_list_for_collection" in rules
    assert lint_clauses("").model_dump(mode="json") == {"verdict": "clean", "findings": []}


def test_spans_point_into_the_original_text_with_whitespace_trimmed():
    text = "第一条 借款金额一万元。\n\n   您同意我们读取您的通讯录。   \n"
    f = next(f for f in lint_clauses(text).findings if f.rule == "cn.clause.contact_list_bundled")
    assert f.text == "您同意我们读取您的通讯录。" and text[f.span[0] : f.span[1]] == f.text


def test_document_level_findings_have_an_empty_span():
    report = lint_clauses("隐私政策\n我们收集您的手机号码用于登录。")
    doc = [f for f in report.findings if f.rule.startswith("cn.clause.privacy_")]
    assert {f.rule for f in doc} == {"cn.clause.privacy_no_retention", "cn.clause.privacy_no_rights"}
    assert all(f.span == (0, 0) and f.text == "" for f in doc)
    # Not a privacy policy: the document-level rules do not apply.
    assert lint_clauses("我们收集您的手机号码用于登录。").verdict == "clean"


def test_a_negation_clears_only_its_own_sentence():
    assert lint_clauses("我们不会读取您的通讯录。").verdict == "clean"
    mixed = "我们不会出售您的信息。我们会读取您的通讯录用于风控。"
    assert "cn.clause.contact_list_bundled" in {f.rule for f in lint_clauses(mixed).findings}


def test_a_separate_consent_form_covers_its_clauses():
    body = "我们将获取您的精确位置，用于核验申请地。"
    assert "cn.clause.sensitive_without_separate_consent" in {f.rule for f in lint_clauses(body).findings}
    assert lint_clauses("【位置信息单独授权书】\n" + body).verdict == "clean"
    assert lint_clauses(body[:-1] + "，为此我们将另行征得您的单独同意。").verdict == "clean"


@pytest.mark.parametrize(
    "marked",
    [
        "【借款人逾期的，应支付罚息。】",
        "**借款人逾期的，应支付罚息。**",
        "<b>借款人逾期的，应支付罚息。</b>",
        "【重要】借款人逾期的，应支付罚息。",
        "（加粗）借款人逾期的，应支付罚息。",
        "IF YOU PAY LATE, A LATE FEE OF USD 15 APPLIES.",
    ],
)
def test_conspicuous_marks_satisfy_civil_code_496(marked):
    assert lint_clauses(marked).verdict == "clean"


def test_unmarked_key_terms_are_flagged_but_headings_are_not():
    report = lint_clauses("违约金\n借款人逾期的，应支付违约金。")
    assert [(f.rule, f.text) for f in report.findings] == [
        ("cn.clause.not_conspicuous", "借款人逾期的，应支付违约金。")
    ]


def test_naming_the_recipient_is_not_a_separate_consent():
    named = "您同意我们向深圳市信达征信服务有限公司提供您的借款信息。"
    rules = {f.rule for f in lint_clauses(named).findings}
    assert "cn.clause.sharing_bundled" in rules and "cn.clause.third_party_unnamed" not in rules


def test_an_id_card_condition_is_lawful_but_a_contact_list_condition_is_not():
    assert lint_clauses("如您拒绝提供身份证信息，将无法申请借款。").verdict == "clean"
    rules = {f.rule for f in lint_clauses("不授权通讯录就无法借款。").findings}
    assert "cn.clause.consent_as_condition" in rules


def _spec(**changes):
    data = load_clause_spec().model_dump()
    data.update(changes)
    return data


def test_a_bad_pattern_stops_the_linter_at_load_time():
    data = _spec()
    data["rules"][0]["all_of"] = [["(unclosed"]]
    with pytest.raises(PackError, match="bad pattern"):
        ClauseLinter(ClauseSpec.model_validate(data))


def test_unknown_markers_and_bad_citations_are_refused():
    data = _spec()
    data["rules"][0]["unless_markers"] = ["no_such_marker"]
    with pytest.raises(ValueError, match="unknown markers"):
        ClauseSpec.model_validate(data)
    data = _spec()
    data["rules"][0]["citations"] = ["PIPL 14"]
    with pytest.raises(ValueError, match="citation id"):
        ClauseSpec.model_validate(data)


def _cli(monkeypatch, capsys, *args, stdin=b""):
    import io
    import sys

    from collectguard.cli.main import main

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    with pytest.raises(SystemExit) as exit_:
        main(["clauses", "lint", *args])
    out, err = capsys.readouterr()
    return int(exit_.value.code or 0), out, err


def test_the_cli_lints_a_file_or_stdin_and_exits_0_whatever_the_verdict(monkeypatch, capsys):
    rc, out, _ = _cli(monkeypatch, capsys, str(DATA / "problem__disclosure_waiver__zh.txt"))
    assert rc == 0 and json.loads(out)["verdict"] == "problems"
    rc, out, _ = _cli(monkeypatch, capsys, "-", stdin="\ufeff我们不会读取您的通讯录。".encode())
    assert rc == 0 and json.loads(out) == {"verdict": "clean", "findings": []}
    rc, _, err = _cli(monkeypatch, capsys, "no/such/file.txt")
    assert rc == 2 and "cannot read" in err
    rc, _, err = _cli(monkeypatch, capsys, "-", stdin=b"\xb2\xbb\xbb\xe1")  # GBK, not UTF-8
    assert rc == 2 and "not UTF-8" in err
