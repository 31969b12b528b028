"""Benchmark of the guard: in-process throughput and whole-process `collectguard check`.

    .venv/bin/python bench/guard.py [--n 50000] [--seed 7] [--out bench/out/events.jsonl]

Generates N random CN events (seeded, so runs compare) into a JSON Lines file, then measures
(a) in process, one core: ``Guard.check_utf8`` over all lines (validate the JSON bytes, judge,
serialise the decision: what each batch of ``collectguard check`` runs), best of 3, and
(b) the whole process ``collectguard check FILE > /dev/null`` (start-up, forked workers and
output included), 3 runs, each with its wall time and the CPU seconds it used (workers
included); plus the start-up alone (``check`` of the first event only). Prints one JSON object.
Target: >= 25,000 decisions/s whole process on a 2-core machine. Wall time depends on what else
runs: ``load_average_1m`` is reported per run, and CPU seconds, which depend far less on other
load, so that a busy machine's figure can be read as such.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TEMPLATES = [
    "您好，您的借款本期应还{amt}元已逾期{d}天，请通过App还款。如有困难可申请分期。",
    "【提醒】尊敬的客户，您在我司的账单{amt}元已到期，请于今日23:59前还款，以免影响您的信用。",
    "您好，请尽快登录App处理逾期账单，如需协商还款方案请回复本短信。",
    "再不還錢就讓你坐牢，{amt}元今天必须到账！",
    "不还钱就爆你通-讯-录，让你所有联系人都知道你是老赖。",
    "这里是法院，你明天就会被拘留。",
    "请转告张三尽快与我们联系，谢谢。",
    "您好，您的朋友张三在我平台欠款{amt}元，请转告他尽快还款。",
    "Hello, your payment of ${amt} is {d} days past due. Reply STOP to opt out.",
    "Pay today or we will tell your employer about your debt.",
    "你这个骗子，再不还钱找人收拾你。",
    "您好，本期账单{amt}元，可通过App申请延期或分期，如有疑问请致电客服。",
]
ROLES = ["borrower"] * 16 + [
    "guarantor",
    "emergency_contact",
    "emergency_contact",
    "spouse",
    "relative",
    "colleague",
    "employer",
    "contact_list_entry",
    "other_third_party",
]
CHANNELS = ["call"] * 11 + ["sms"] * 5 + ["im", "app_push", "email", "visit", "letter", "public_post"]


def make_event(rng: random.Random) -> dict[str, object]:
    """One random but well-formed CN event; roughly a third carry a message."""
    channel = rng.choice(CHANNELS)
    role = rng.choice(ROLES)
    day = rng.randint(1, 28)
    month = rng.randint(1, 12)
    hh, mm = rng.randint(0, 23), rng.randint(0, 59)
    ev: dict[str, object] = {
        "jurisdiction": "CN",
        "channel": channel,
        "time": f"2026-{month:02d}-{day:02d}T{hh:02d}:{mm:02d}:00+08:00",
        "recipient": {"role": role},
    }
    if role != "borrower":
        ev["purpose"] = rng.choice(["collect", "locate", "locate", "relay_message"])
        ev["recipient"] = {"role": role, "source": rng.choice(["borrower_designated"] * 4 + ["contact_list"])}
    hist: dict[str, object] = {}
    if rng.random() < 0.6:
        hist["connected_calls_today"] = rng.randint(0, 4)
        hist["attempts_today_same_method"] = rng.randint(0, 7)
    if role != "borrower":
        hist["borrower_unreachable"] = rng.random() < 0.7
    if hist:
        ev["history"] = hist
    if rng.random() < (0.1 if channel == "call" else 0.55):
        ev["message"] = rng.choice(TEMPLATES).format(amt=rng.randint(100, 9999), d=rng.randint(1, 90))
    if rng.random() < 0.2:
        ev["collector"] = {
            "kind": "agency",
            "outsourcing_notified": rng.random() < 0.9,
            "processing_contract": rng.random() < 0.9,
            "visitors": rng.randint(1, 3),
        }
    if rng.random() < 0.15:
        lender = rng.choice(["licensed_institution", "small_loan_company", "private", "unlicensed"])
        ev["debt"] = {
            "days_past_due": rng.randint(1, 200),
            "annual_rate": round(rng.uniform(6, 60), 2),
            "lender_type": lender,
            "lpr_at_signing": 3.45,
        }
    if rng.random() < 0.1:
        ev["consent"] = {"agreed_hours": rng.choice(["09:00-21:00", "21:00-07:00", "12:00-13:00"])}
    return ev


def generate(path: Path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for _ in range(n):
            f.write(json.dumps(make_event(rng), ensure_ascii=False) + "\n")


def in_process(path: Path, repeat: int = 3) -> dict[str, float]:
    """``Guard.check_utf8`` over every line (what each batch of ``collectguard check`` runs), in
    this process on one core: best of ``repeat``, with its CPU time."""
    from collectguard.rules import Guard

    guard = Guard.default()
    lines = path.read_bytes().splitlines(keepends=True)
    best: tuple[float, float, bytes] | None = None
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        out, bad = guard.check_utf8(lines)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        assert bad is None, bad
        if best is None or wall < best[0]:
            best = (wall, cpu, out)
    assert best is not None
    wall, cpu, out = best
    denies = out.count(b'{"verdict":"deny"')
    return {
        "seconds": round(wall, 3),
        "decisions_per_s": round(len(lines) / wall),
        "cpu_seconds": round(cpu, 3),
        "decisions_per_cpu_s": round(len(lines) / cpu),
        "deny_share": round(denies / len(lines), 3),
    }


def whole_process(path: Path, n: int, repeat: int = 3) -> dict[str, object]:
    """``collectguard check FILE > /dev/null``, start-up included: every run's wall time and CPU
    seconds (the process and its workers), the best run's rate."""
    exe = shutil.which("collectguard", path=str(Path(sys.executable).parent))
    cmd = [exe, "check", str(path)] if exe else [sys.executable, "-m", "collectguard", "check", str(path)]
    runs = []
    for _ in range(repeat):
        load = os.getloadavg()[0]
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        with open(os.devnull, "wb") as null:
            subprocess.run(cmd, stdout=null, check=True)
        dt = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)  # the process and its workers
        runs.append({"seconds": round(dt, 3), "cpu_seconds": round(used, 3), "load_average_1m": round(load, 2)})
    best = min(runs, key=lambda r: r["seconds"])
    one = path.with_suffix(".one.jsonl")  # start-up: imports, packs, one decision
    with path.open("rb") as f:
        one.write_bytes(f.readline())
    t0 = time.perf_counter()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([*cmd[:-1], str(one)], check=True, stdout=subprocess.DEVNULL)
    startup = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "command": " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd)),
        "seconds": best["seconds"],
        "decisions_per_s": round(n / best["seconds"]),
        "cpu_seconds": best["cpu_seconds"],
        "decisions_per_cpu_s": round(n / best["cpu_seconds"]),
        "runs": runs,
        "startup_seconds": round(startup, 3),
        "startup_cpu_seconds": round((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), 3),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/out/events.jsonl")
    args = ap.parse_args()
    generate(args.out, args.n, args.seed)
    result = {
        "events": args.n,
        "seed": args.seed,
        "cpus": os.cpu_count(),
        "in_process": in_process(args.out),
        "whole_process": whole_process(args.out, args.n),
        "target_decisions_per_s": 25_000,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
