"""``collectguard check`` as a whole process: forked workers give the very bytes judging in process gives.

Long JSON Lines input is judged by worker processes (``cli/_forkmap.py``); the decisions must be
the same text, in the same order, as ``Guard.check`` event by event — and a bad line in a
worker's batch must stop with exit 2 naming it, after exactly the decisions before it.
"""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from collectguard.cli import check as check_cli
from collectguard.domain.event import parse_event_json
from collectguard.rules import Guard

ROOT = Path(__file__).parents[2]
N = 4500  # more than two batches: the first is judged in process, the rest by workers
MESSAGES = [
    "您好，您的借款本期应还{n}元已逾期{d}天，请通过App还款。",
    "再不還錢就讓你坐牢，{n}元今天必须到账！",
    "不还钱就爆你通-讯-录，让你所有联系人都知道你是老赖。",
    "您好，您的朋友张三在我平台欠款{n}元，请转告他尽快还款。",
    "Pay ${n} today or we will tell your employer about your debt.",
    "这里是法院，你明天就会被拘留。",
]


def event(rng: random.Random) -> dict[str, Any]:
    role = rng.choice(["borrower"] * 5 + ["guarantor", "spouse", "relative", "colleague", "contact_list_entry"])
    e: dict[str, Any] = {
        "jurisdiction": rng.choice(["CN"] * 8 + ["US", "EU"]),
        "channel": rng.choice(["call", "call", "sms", "im", "visit", "letter", "public_post"]),
        "time": f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
        f"{rng.randint(0, 59):02d}:00+08:00",
        "recipient": {"role": role},
    }
    if role != "borrower":
        e["purpose"] = rng.choice(["collect", "locate", "relay_message"])
        e["history"] = {"borrower_unreachable": rng.random() < 0.7}
    if rng.random() < 0.4:
        e["message"] = rng.choice(MESSAGES).format(n=rng.randint(100, 9999), d=rng.randint(1, 90))
    if rng.random() < 0.3:
        e.setdefault("history", {})["connected_calls_today"] = rng.randint(0, 4)
    if rng.random() < 0.15:
        e["debt"] = {"annual_rate": rng.randint(5, 60), "lender_type": "private", "lpr_at_signing": "3.45"}
    return e


@pytest.fixture(scope="module")
def events_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(11)
    path = tmp_path_factory.mktemp("check") / "events.jsonl"
    path.write_text("".join(json.dumps(event(rng), ensure_ascii=False) + "\n" for _ in range(N)), encoding="utf-8")
    return path


def reference(lines: list[bytes]) -> bytes:
    """One decision per event through the slow path: validate, ``Guard.check``, ``model_dump_json``."""
    guard = Guard.default()
    return b"".join(guard.check(parse_event_json(x)).model_dump_json().encode() + b"\n" for x in lines)


def collectguard(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "collectguard", "check", *args], input=stdin,
                          capture_output=True, cwd=ROOT, timeout=300)


def test_whole_process_in_process_and_event_by_event_agree(events_file: Path) -> None:
    expected = reference(events_file.read_bytes().splitlines())
    whole = collectguard(str(events_file))
    assert whole.returncode == 0, whole.stderr
    assert whole.stdout == expected
    assert collectguard("-", stdin=events_file.read_bytes()).stdout == expected
    for workers in (1, 3):
        buf = io.StringIO()
        check_cli.check_command(str(events_file), out=buf, workers=workers)
        assert buf.getvalue().encode() == expected


def test_a_bad_line_in_a_workers_batch_exits_2_after_the_lines_before_it(events_file: Path, tmp_path: Path) -> None:
    lines = events_file.read_bytes().splitlines(keepends=True)
    bad = 3456
    lines[bad - 1] = lines[bad - 1].replace(b'"channel": "', b'"channel": "fax-')
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"".join(lines))
    done = collectguard(str(path))
    assert done.returncode == 2
    assert done.stderr.decode().strip().startswith(f"error: line {bad}, field 'channel':")
    assert done.stdout == reference(lines[: bad - 1])
