"""``collectguard assess`` through the command line: --text (zh, en), --format text, events, bad input."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from collectguard.cli.main import main

SEED = "我网贷逾期了，他们给我通讯录里的人发短信说我欠钱不还"
NIGHT = {"jurisdiction": "CN", "channel": "call", "time": "2026-03-02T22:30:00+08:00",
         "recipient": {"role": "borrower"}}


@pytest.fixture
def cli(monkeypatch, capsys, tmp_path):
    """Run the CLI in this process: (exit code, stdout, stderr). The self-check needs no database."""
    monkeypatch.chdir(tmp_path)

    def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        with pytest.raises(SystemExit) as exit_:
            main(["assess", *args])
        out, err = capsys.readouterr()
        return int(exit_.value.code or 0), out, err

    return run


def test_text_zh_json(cli) -> None:
    code, out, err = cli("--text", SEED, "--as-of", "2026-04-07")
    assert code == 0 and err == ""
    a = json.loads(out)
    assert a["verdict"] == "unlawful"
    assert {"verdict", "findings", "missing_facts", "consequences", "next_steps", "facts"} <= set(a)
    citations = {c for f in a["findings"] for c in f["citations"]}
    assert {"CN:PIPL:10", "CN:CC:1038"} <= citations
    assert a["facts"]["recipient"] == {"role": "contact_list_entry", "count": 2, "source": "contact_list"}
    assert not list(Path.cwd().iterdir())  # no database file: the self-check stores nothing


def test_text_en_with_jurisdiction(cli) -> None:
    code, out, _ = cli("--text", "They called me at 11:30 pm and texted my sister that I owe money.",
                       "--jurisdiction", "cn")
    a = json.loads(out)
    assert code == 0 and a["verdict"] == "unlawful" and a["jurisdiction"] == "CN"
    assert {"cn.quiet_hours", "cn.third_party.disclosure"} <= {f["rule"] for f in a["findings"]}
    assert [e["facts"]["recipient"]["role"] for e in a["events"]] == ["borrower", "relative"]


def test_format_text_is_readable_chinese(cli) -> None:
    code, out, _ = cli("--text", "他们晚上十一点半给我打电话，还骂我是老赖", "--format", "text")
    assert code == 0
    assert out.startswith("结论：违法")
    for part in ("我们理解的事实", "电话 → 您本人；时间：23:30", "违法之处", "在夜间（22:00至次日8:00）催收",
                 "依据：国家标准 GB/T 45251—2025", "辱骂、侮辱", "《中华人民共和国民法典》第1024条",
                 "可能的法律后果", "[民事] 侵害名誉权", "建议的下一步", "12378", "不构成法律意见"):
        assert part in out, part


def test_format_text_undetermined_asks_questions(cli) -> None:
    code, out, _ = cli("--text", "他们打电话给我的紧急联系人，问我的新手机号", "--format", "text")
    assert code == 0 and out.startswith("结论：尚不能确定")
    assert "需要补充的事实" in out and "联系不上" in out


def test_format_text_follows_an_english_description(cli) -> None:
    code, out, _ = cli("--text", "A collector called me at 3 pm to remind me politely.", "--format", "text")
    assert code == 0 and out.startswith("Verdict: LAWFUL") and "not legal advice" in out
    code, out, _ = cli("--text", "A collector called me at 3 pm to remind me politely.", "--format", "text",
                       "--lang", "zh")
    assert out.startswith("结论：未发现违法")


def test_structured_event_from_a_file(cli, tmp_path) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(NIGHT, indent=2), encoding="utf-8")
    code, out, _ = cli(str(path))
    (line,) = out.splitlines()
    a = json.loads(line)
    assert code == 0 and a["verdict"] == "unlawful" and a["facts"] == NIGHT
    assert a["findings"][0]["rule"] == "cn.quiet_hours"


def test_json_lines_and_text_objects_from_stdin(cli) -> None:
    third = NIGHT | {"time": "2026-03-02T14:00:00+08:00", "purpose": "locate",
                     "recipient": {"role": "emergency_contact", "source": "borrower_designated"}}
    lines = "\n".join(json.dumps(x, ensure_ascii=False) for x in (NIGHT, third, {"text": SEED}))
    code, out, _ = cli("-", stdin=lines + "\n")
    verdicts = [json.loads(x)["verdict"] for x in out.splitlines()]
    assert code == 0 and verdicts == ["unlawful", "undetermined", "unlawful"]


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (("--text", "   "), "", "field 'text'"),
    (("--text", SEED, "--jurisdiction", "JP"), "", "field 'jurisdiction'"),
    (("--text", SEED, "--format", "xml"), "", "field '--format'"),
    (("--text", SEED, "--as-of", "yesterday"), "", "field '--as-of'"),
    (("-",), "{not json", "not valid JSON"),
    (("-",), "", "empty input"),
    (("-",), json.dumps(NIGHT | {"recipient": {"role": "neighbour"}}), "field 'recipient.role'"),
    (("-",), json.dumps(NIGHT | {"colour": "red"}), "field 'colour': unknown field"),
    (("-",), json.dumps({"text": SEED, "lang": "zh"}), "field 'lang'"),
    (("-",), json.dumps(NIGHT) + "\n" + json.dumps(NIGHT | {"channel": "fax"}), "line 2, field 'channel'"),
    (("no-such-file.json",), "", "field 'PATH'"),
])
def test_bad_input_exits_2_with_one_line(cli, args, stdin, message) -> None:
    code, out, err = cli(*args, stdin=stdin)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and message in err, err


def test_the_real_entry_point() -> None:
    env = os.environ | {"PYTHONIOENCODING": "utf-8"}
    proc = subprocess.run([sys.executable, "-m", "collectguard", "assess", "--text", SEED, "--format", "text"],
                          capture_output=True, text=True, encoding="utf-8", env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("结论：违法") and "通讯录" in proc.stdout
