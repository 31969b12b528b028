"""The entry point's fast path for `check` answers exactly as the full CLI does."""

from __future__ import annotations

import json
import subprocess
import sys

EVENTS = [
    {"jurisdiction": "CN", "channel": "call", "time": "2026-04-07T22:30:00+08:00", "recipient": {"role": "borrower"}},
    {"jurisdiction": "CN", "channel": "sms", "time": "2026-04-07T10:00:00+08:00",
     "recipient": {"role": "colleague", "source": "contact_list"}, "message": "他欠钱不还，请转告他。"},
    {"jurisdiction": "CN", "channel": "sms", "time": "2026-04-07T10:00:00+08:00", "recipient": {"role": "borrower"},
     "message": "您好，您的借款本期应还1,200元，到期日为4月10日。"},
]
FULL = [sys.executable, "-c", "from collectguard.cli.main import main; main()"]
FAST = [sys.executable, "-m", "collectguard"]


def _both(args, stdin=""):
    return [subprocess.run(cmd + args, input=stdin, capture_output=True, text=True, timeout=120)
            for cmd in (FULL, FAST)]


def test_check_through_the_launcher_equals_the_full_cli(tmp_path):
    good = tmp_path / "e.jsonl"
    events = [json.dumps(e, ensure_ascii=False) for e in EVENTS]
    good.write_text("\n".join(events * 500) + "\n", encoding="utf-8")  # past one batch: the forked workers
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good.read_text("utf-8").splitlines()[0] + '\n{"jurisdiction": "CN"}\n', encoding="utf-8")
    for args, stdin in ((["check", str(good)], ""), (["check", "-"], good.read_text("utf-8")),
                        (["check", str(bad)], ""), (["check", str(tmp_path / "missing.jsonl")], "")):
        full, fast = _both(args, stdin)
        assert (fast.returncode, fast.stdout) == (full.returncode, full.stdout), args
        assert fast.stderr.strip().splitlines()[-1:] == full.stderr.strip().splitlines()[-1:], args
    assert _both(["check", str(good)])[1].stdout.count("\n") == len(good.read_text("utf-8").splitlines())
