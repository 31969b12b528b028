"""The engine: compile, evaluate every rule, fail closed, effective dates, the stream and CLI paths."""

from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from collectguard.cli import check as check_cli
from collectguard.domain.event import Decision, parse_event
from collectguard.errors import BadInput
from collectguard.policy import loader
from collectguard.policy.loader import PackError, PackSpec
from collectguard.rules import Guard, compile_pack, evaluate
from collectguard.rules.engine import evaluate_json
from collectguard.rules.kinds import KINDS

EXAMPLES = Path("/work/shared/examples/events.jsonl")


def ev(**changes: Any) -> Any:
    base: dict[str, Any] = {
        "jurisdiction": "CN",
        "channel": "call",
        "time": "2026-04-07T10:00:00+08:00",
        "recipient": {"role": "borrower"},
    }
    return parse_event({**base, **changes})


@pytest.fixture(scope="module")
def guard() -> Guard:
    return Guard.default()


def rules_of(d: Decision) -> set[str]:
    return {v.rule for v in d.violations}


def pack(*rules: dict[str, Any], **top: Any) -> PackSpec:
    base = {"pack": "CN", "version": "t", "jurisdiction": "CN", "debtor_roles": ["borrower", "guarantor"]}
    return PackSpec.model_validate({**base, **top, "rules": list(rules)})


def rule(**r: Any) -> dict[str, Any]:
    base = {
        "id": "cn.t",
        "kind": "always",
        "citations": ["CN:PIPL:10"],
        "verification": "Y",
        "source": "test",
        "message_zh": "测试",
        "message_en": "test",
    }
    return {**base, **r}


# ---------------------------------------------------------------- the shipped pack


def test_default_guard_loads_the_cn_pack(guard: Guard) -> None:
    assert "CN" in guard.packs
    assert guard.packs["CN"].version == "2026.1"
    assert "CN" in loader.available_packs()


def test_describe_is_json_ready(guard: Guard) -> None:
    described = guard.packs["CN"].describe()
    json.dumps(described)
    assert described["pack"] == "CN" and any(r["id"] == "cn.quiet_hours" for r in described["rules"])


def test_every_cn_rule_has_source_verification_and_messages() -> None:
    spec = loader.load_pack("CN")
    for r in spec.rules:
        assert r.source and r.verification in ("Y", "Y2", "policy")
        assert r.message_zh and r.message_en
        if r.effect == "deny" and r.verification != "policy":
            assert r.citations, r.id


def test_all_violations_are_returned_not_just_the_first(guard: Guard) -> None:
    d = guard.check(
        ev(
            time="2026-04-07T23:00:00+08:00",
            history={"connected_calls_today": 3, "attempts_today_same_method": 6},
            collector={"kind": "agency"},
        )
    )
    assert rules_of(d) >= {
        "cn.quiet_hours",
        "cn.connected_calls_cap",
        "cn.attempts_same_number_cap",
        "cn.outsourcing.notice",
        "cn.outsourcing.contract",
    }
    assert d.verdict == "deny" and d.pack == "CN" and d.pack_version == "2026.1"


def test_violations_follow_pack_order(guard: Guard) -> None:
    d = guard.check(ev(time="2026-04-07T23:00:00+08:00", collector={"kind": "agency"}))
    order = [r.id for r in loader.load_pack("CN").rules]
    got = [v.rule for v in d.violations]
    assert got == sorted(got, key=order.index)


def test_no_pack_denies() -> None:
    only_cn = Guard.from_packs(["CN"])
    d = only_cn.check(ev(jurisdiction="EU"))
    assert d.verdict == "deny" and rules_of(d) == {"engine.no_pack"}
    assert d.pack == "EU" and d.pack_version is None
    assert evaluate(ev(), None).violations[0].rule == "engine.no_pack"
    assert evaluate(ev(jurisdiction="US"), only_cn.packs["CN"]).violations[0].rule == "engine.no_pack"
    assert json.loads(next(only_cn.check_stream([line(jurisdiction="US")])))["violations"][0]["rule"] == (
        "engine.no_pack"
    )


def test_shared_examples_for_cn(guard: Guard) -> None:
    for line in EXAMPLES.read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        if case["event"]["jurisdiction"] != "CN":
            continue
        d = guard.check(parse_event(case["event"]))
        assert d.verdict == case["expect"], case["id"]
        cites = {c for v in d.violations for c in v.citations}
        want = case["citations_include_any_of"]
        assert not want or cites & set(want), case["id"]


def test_lint_hits_for_third_parties_only_when_relevant(guard: Guard) -> None:
    msg = "您好，您的借款本期应还860元已逾期2天，请通过App还款。"
    to_borrower = guard.check(ev(channel="sms", message=msg))
    assert to_borrower.verdict == "allow" and to_borrower.lint == ()
    to_contact = guard.check(
        ev(
            channel="sms",
            message=msg,
            purpose="relay_message",
            recipient={"role": "emergency_contact", "source": "borrower_designated"},
            history={"borrower_unreachable": True},
        )
    )
    assert to_contact.verdict == "deny" and "cn.third_party.disclosure" in rules_of(to_contact)
    assert {h.category for h in to_contact.lint} == {"debt_disclosure"}


def test_json_fast_path_is_byte_identical(guard: Guard) -> None:
    samples = [
        ev(),
        ev(time="2026-04-07T23:00:00+08:00"),
        ev(channel="sms", message="再不還錢就讓你坐牢"),
        ev(channel="sms", message="张三欠款8000元", purpose="locate", recipient={"role": "relative"}),
        ev(recipient={"role": "borrower", "count": 3}),
        ev(jurisdiction="US"),
        ev(jurisdiction="EU"),
    ]
    for e in samples:
        for pack in (guard.packs.get(e.jurisdiction), None):
            assert evaluate_json(e, pack) == evaluate(e, pack).model_dump_json()


def test_cached_decision_texts_follow_each_events_own_lint_hits(guard: Guard) -> None:
    # The same template, rules and recipient with other amounts: one cached text per hit text,
    # never the first event's text for the second.
    cn = guard.packs["CN"]
    third = {"purpose": "locate", "recipient": {"role": "relative"}, "channel": "sms"}
    amounts = [8000, 9100, 8000, 77, 9100]
    for amount in amounts * 2:
        e = ev(message=f"张三欠款{amount}元，请转告", **third)
        expected = evaluate(e, cn).model_dump_json()
        assert f"{amount}元" in expected
        assert evaluate_json(e, cn) == expected
        assert cn.evaluate_utf8(e) == expected.encode()


def test_check_utf8_equals_check_batch(guard: Guard) -> None:
    lines = [line(time=f"2026-04-07T{h:02d}:30:00+08:00", channel=c) for h in range(24) for c in ("call", "sms")]
    lines += [line(message="再不還錢就讓你坐牢", channel="sms"), "", line(jurisdiction="US")]
    lines += [line(channel="fax"), line()]
    texts, bad = guard.check_batch(lines, first_line=5)
    data, bad_utf8 = guard.check_utf8([x.encode() for x in lines], first_line=5)
    assert bad is not None and bad == bad_utf8 and bad.line == 5 + len(lines) - 2
    assert data == "".join(t + "\n" for t in texts).encode()


# ---------------------------------------------------------------- effective dates


def test_citations_in_force_follow_the_event_date(guard: Guard) -> None:
    before_cba = guard.check(ev(time="2025-06-01T23:00:00+08:00"))
    after_cba = guard.check(ev(time="2026-04-07T23:00:00+08:00"))
    assert before_cba.violations[0].citations == ("CN:GBT45251",)
    assert after_cba.violations[0].citations == ("CN:GBT45251", "CN:CBA2026")


def test_rules_not_yet_in_force_do_not_apply(guard: Guard) -> None:
    assert guard.check(ev(time="2024-06-01T23:00:00+08:00")).verdict == "allow"  # before GB/T 45251
    assert (
        guard.check(ev(history={"attempts_today_same_method": 6}, time="2026-01-29T10:00:00+08:00")).verdict == "allow"
    )
    assert (
        guard.check(ev(history={"attempts_today_same_method": 6}, time="2026-01-30T10:00:00+08:00")).verdict == "deny"
    )


def test_dated_threshold_picks_the_value_in_force() -> None:
    spec = pack(
        rule(
            kind="counter_cap",
            params={
                "counter": "history.connected_calls_today",
                "max": [
                    {"value": 3, "effective_from": date(2026, 1, 1)},
                    {"value": 2, "effective_from": date(2026, 6, 1)},
                ],
            },
        )
    )
    compiled = compile_pack(spec)
    calls2 = {"connected_calls_today": 2}
    assert evaluate(ev(history=calls2, time="2025-12-31T10:00:00+08:00"), compiled).verdict == "allow"  # not in force
    assert evaluate(ev(history=calls2, time="2026-05-31T10:00:00+08:00"), compiled).verdict == "allow"
    assert evaluate(ev(history=calls2, time="2026-06-01T10:00:00+08:00"), compiled).verdict == "deny"


def test_rule_effective_to_is_exclusive() -> None:
    compiled = compile_pack(pack(rule(effective_from=date(2026, 1, 1), effective_to=date(2026, 2, 1))))
    assert evaluate(ev(time="2026-01-31T23:59:00+08:00"), compiled).verdict == "deny"
    assert evaluate(ev(time="2026-02-01T00:00:00+08:00"), compiled).verdict == "allow"


# ---------------------------------------------------------------- fail closed


def test_an_exploding_rule_denies_and_the_others_still_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(p: Any, ctx: Any) -> Any:
        def check(f: Any) -> bool:
            raise RuntimeError("boom")

        return check

    monkeypatch.setitem(KINDS, "explode", explode)
    compiled = compile_pack(pack(rule(id="cn.bad", kind="explode"), rule(id="cn.good")))
    d = evaluate(ev(), compiled)
    assert d.verdict == "deny"
    assert [v.rule for v in d.violations] == ["engine.error", "cn.good"]
    assert "cn.bad" in d.violations[0].message_en and "cn.bad" in d.violations[0].message_zh
    assert '"engine.error"' in evaluate_json(ev(), compiled)


def test_an_error_outside_the_rules_denies(monkeypatch: pytest.MonkeyPatch, guard: Guard) -> None:
    compiled = compile_pack(loader.load_pack("CN"), {n: loader.load_lexicon(n) for n in ("zh", "en")})

    def broken(message: str, *, third_party: bool) -> Any:
        raise RuntimeError("lint down")

    monkeypatch.setattr(compiled.linter, "view", broken)
    d = evaluate(ev(channel="sms", message="hello"), compiled)
    assert d.verdict == "deny" and rules_of(d) == {"engine.error"}
    assert json.loads(evaluate_json(ev(channel="sms", message="hello"), compiled))["verdict"] == "deny"


# ---------------------------------------------------------------- bad packs fail loudly


@pytest.mark.parametrize(
    ("rules", "match"),
    [
        ([rule(kind="no_such_kind")], "unknown kind"),
        ([rule(kind="counter_cap", params={"counter": "history.nope", "max": 3})], "unknown fact"),
        (
            [rule(kind="counter_cap", params={"counter": "history.connected_calls_today", "max": 0})],
            "bad value",
        ),
        (
            [
                rule(
                    kind="counter_cap",
                    params={"counter": "history.connected_calls_today", "max": 3, "maxx": 2},
                )
            ],
            "unknown params",
        ),
        ([rule(applies_when={"recipient.role": ["borower"]})], "not a possible value"),
        ([rule(applies_when={"channel": {"among": ["call"]}})], "condition on"),
        ([rule(kind="conduct_ban", params={"conduct": ["jaywalking"]})], "unknown values"),
        ([rule(kind="quiet_hours", params={"allowed_from": "8am", "allowed_until": "22:00"})], "bad value"),
        (
            [
                rule(
                    kind="counter_cap",
                    params={
                        "counter": "history.connected_calls_today",
                        "max": [{"value": 3, "since": "2026-01-01"}],
                    },
                )
            ],
            "effective_from",
        ),
        (
            [
                rule(kind="illegal_debt", params={"tests": ["status_illegal"], "or_rules": ["cn.later"]}),
                rule(id="cn.later"),
            ],
            "earlier in the pack",
        ),
        ([rule(kind="match", params={"any_of": []})], "any_of"),
        ([rule(citations=[{"id": "CN:CBA2026", "effective_from": date(2026, 1, 30)}])], "none of its"),
        ([rule(kind="counter_cap", params={"counter": "conduct", "max": 1})], "is a list"),
    ],
)
def test_bad_rules_fail_at_compile_time(rules: list[dict[str, Any]], match: str) -> None:
    with pytest.raises(PackError, match=match):
        compile_pack(pack(*rules))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"rules": [rule(citations=["PIPL 10"])]}, "citation id"),
        ({"rules": [rule(citations=[])]}, "must cite"),
        ({"rules": [rule(), rule()]}, "appears twice"),
        ({"rules": [rule(verification="N")]}, "verification"),
        ({"rules": [rule(colour="red")]}, "colour"),
        ({"rules": []}, "rules"),
    ],
)
def test_bad_pack_structure_is_refused(data: dict[str, Any], match: str) -> None:
    base = {"pack": "CN", "version": "t", "jurisdiction": "CN", "debtor_roles": ["borrower"]}
    with pytest.raises(ValueError, match=match):
        PackSpec.model_validate({**base, **data})


def test_unknown_debtor_role_is_refused() -> None:
    with pytest.raises(PackError, match="debtor_roles"):
        compile_pack(pack(rule(), debtor_roles=["borrower", "debtor"]))


def test_missing_pack_file_and_lexicon() -> None:
    with pytest.raises(PackError, match="no such packaged file"):
        loader.load_pack("XX")
    with pytest.raises(PackError, match="lexicons not supplied"):
        compile_pack(pack(rule(), lexicons=["zh"]))


def test_yaml_errors_are_pack_errors() -> None:
    with pytest.raises(PackError, match="not valid YAML"):
        loader.load_yaml_text("a: [1, 2", where="x.yaml")


# ---------------------------------------------------------------- stream and CLI


def line(**changes: Any) -> str:
    base = {
        "jurisdiction": "CN",
        "channel": "call",
        "time": "2026-04-07T10:00:00+08:00",
        "recipient": {"role": "borrower"},
    }
    return json.dumps({**base, **changes}, ensure_ascii=False)


def test_check_stream_skips_blank_lines_and_names_the_bad_line(guard: Guard) -> None:
    out = list(guard.check_stream([line(), "", "  ", line(time="2026-04-07T23:00:00+08:00")]))
    assert [json.loads(o)["verdict"] for o in out] == ["allow", "deny"]
    gen = guard.check_stream([line(), line(recipient={"role": "boss"})])
    assert json.loads(next(gen))["verdict"] == "allow"
    with pytest.raises(BadInput) as err:
        next(gen)
    assert err.value.line == 2 and err.value.field == "recipient.role"


def test_check_batch_reports_instead_of_raising(guard: Guard) -> None:
    out, bad = guard.check_batch([line(), line(channel="fax"), line()], first_line=10)
    assert len(out) == 1 and bad is not None and bad.line == 11 and bad.field == "channel"


def run_check(tmp_path: Path, text: str, **kw: Any) -> list[dict[str, Any]]:
    f = tmp_path / "in.jsonl"
    f.write_text(text, encoding="utf-8")
    buf = io.StringIO()
    check_cli.check_command(str(f), out=buf, **kw)
    return [json.loads(x) for x in buf.getvalue().splitlines()]


def test_check_command_json_lines(tmp_path: Path) -> None:
    out = run_check(tmp_path, "\n".join([line(), line(time="2026-04-07T22:00:00+08:00"), ""]) + "\n")
    assert [d["verdict"] for d in out] == ["allow", "deny"]


def test_check_command_pretty_printed_object_and_array(tmp_path: Path) -> None:
    one = json.dumps(json.loads(line(time="2026-04-07T22:30:00+08:00")), indent=2)
    assert [d["verdict"] for d in run_check(tmp_path, one)] == ["deny"]
    many = json.dumps([json.loads(line()), json.loads(line(channel="public_post"))], indent=2)
    assert [d["verdict"] for d in run_check(tmp_path, many)] == ["allow", "deny"]
    assert run_check(tmp_path, "\n\n") == []


def test_check_command_output_is_utf8_not_escaped(tmp_path: Path) -> None:
    f = tmp_path / "in.jsonl"
    f.write_text(line(time="2026-04-07T22:30:00+08:00"), encoding="utf-8")
    buf = io.StringIO()
    check_cli.check_command(str(f), out=buf)
    assert "催收" in buf.getvalue() and "\\u" not in buf.getvalue()


@pytest.mark.parametrize(
    ("text", "line_no", "field"),
    [
        (line() + "\n" + line(recipient={"role": "boss"}) + "\n", 2, "recipient.role"),
        ("\n" + line(time="2026-04-07T10:00:00") + "\n", 2, "time"),
        (line() + "\n{not json\n", 2, None),
    ],
)
def test_check_command_bad_input(tmp_path: Path, text: str, line_no: int, field: str | None) -> None:
    with pytest.raises(BadInput) as err:
        run_check(tmp_path, text)
    assert err.value.line == line_no and err.value.field == field


def test_check_command_bad_array_element_names_its_index(tmp_path: Path) -> None:
    text = json.dumps([json.loads(line()), {"jurisdiction": "CN"}], indent=1)
    with pytest.raises(BadInput) as err:
        run_check(tmp_path, text)
    assert err.value.field == "1.channel"


def test_check_command_missing_file() -> None:
    with pytest.raises(BadInput, match="cannot read"):
        check_cli.check_command("/nonexistent/events.jsonl", out=io.StringIO())


def test_check_command_parallel_batches_keep_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(check_cli, "_BATCH", 4)
    monkeypatch.setattr(check_cli, "_BLOCK", 300)  # a line or two per batch
    hours = [f"2026-04-07T{h:02d}:00:00+08:00" for h in range(24)] * 2
    text = "\n".join(line(time=t) for t in hours) + "\n"
    serial = run_check(tmp_path, text, workers=1)
    parallel = run_check(tmp_path, text, workers=2)
    assert serial == parallel and len(parallel) == 48
    assert [d["verdict"] for d in parallel[:24]] == ["deny"] * 8 + ["allow"] * 14 + ["deny"] * 2


def test_check_command_parallel_bad_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(check_cli, "_BATCH", 4)
    monkeypatch.setattr(check_cli, "_BLOCK", 500)
    lines = [line() for _ in range(20)]
    lines[13] = line(channel="fax")
    f = tmp_path / "in.jsonl"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    buf = io.StringIO()
    with pytest.raises(BadInput) as err:
        check_cli.check_command(str(f), out=buf, workers=2)
    assert err.value.line == 14 and err.value.field == "channel"
    assert len(buf.getvalue().splitlines()) == 13  # everything before the bad line


def test_check_command_parallel_crlf_and_bare_cr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Workers split their batch as iterating the file does: at "\n" only ("\r" is whitespace).
    monkeypatch.setattr(check_cli, "_BATCH", 3)
    monkeypatch.setattr(check_cli, "_BLOCK", 400)
    lines = [line(time=f"2026-04-07T{h:02d}:00:00+08:00") for h in range(24)]
    lines[7] = lines[7].replace(", ", ",\r ")
    text = "\r\n".join(lines) + "\r\n"
    serial = run_check(tmp_path, text, workers=1)
    assert run_check(tmp_path, text, workers=2) == serial and len(serial) == 24


def test_check_command_skips_a_byte_order_mark(tmp_path: Path) -> None:
    out = run_check(tmp_path, "\ufeff" + line() + "\n" + line(channel="public_post") + "\n")
    assert [d["verdict"] for d in out] == ["allow", "deny"]


def test_register_adds_the_check_command(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """test app"""

    check_cli.register(app)
    f = tmp_path / "e.json"
    f.write_text(line(time="2026-04-07T22:30:00+08:00"), encoding="utf-8")
    result = CliRunner().invoke(app, ["check", str(f)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["verdict"] == "deny"
    result = CliRunner().invoke(app, ["check"], input=line() + "\n")
    assert json.loads(result.output)["verdict"] == "allow"
