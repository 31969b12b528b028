"""`collectguard costs price|over-cap` as a user runs them (subprocess, a fresh SQLite file)."""

from __future__ import annotations

import json
import subprocess
import sys


def _cli(db, *args):
    return subprocess.run([sys.executable, "-m", "collectguard", "--database-url", f"sqlite:///{db}", *args],
                          capture_output=True, text=True, timeout=300)


def test_price_then_list_the_loans_over_their_cap(tmp_path):
    db = tmp_path / "c.db"
    assert _cli(db, "demo", "--loans", "300").returncode == 0
    first = _cli(db, "costs", "price", "--json")
    assert first.returncode == 0, first.stderr
    counts = json.loads(first.stdout)
    assert counts["loans"] == 300 and counts["unavailable"] == 0
    assert json.loads(_cli(db, "costs", "price", "--json").stdout)["loans"] == 0  # idempotent
    listed = _cli(db, "costs", "over-cap", "--tenant", "demo-lender", "--limit", "1000")
    assert listed.returncode == 0, listed.stderr
    items = [json.loads(line) for line in listed.stdout.splitlines()]
    assert items and {x["lender_type"] for x in items} <= {"private", "unlicensed"}
    assert all(x["status"] in ("over_cap", "illegal") for x in items)
    assert any(x["status"] == "illegal" and "CN:ILL2019" in x["citations"] for x in items)
    unknown = _cli(db, "costs", "over-cap", "--tenant", "nope")
    assert unknown.returncode == 2 and unknown.stderr.strip() == "error: unknown tenant 'nope'"
