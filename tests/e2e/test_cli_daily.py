"""``collectguard daily`` through the command line, both backends: the JSON contract, idempotence."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

from conftest import create_database, in_process_cli, make_container

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))
from test_daily_seed import D, oracle, random_portfolio, seed

SPECS = random_portfolio(random.Random(5), 80)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request, tmp_path_factory):
    database = create_database(request.param, tmp_path_factory)
    seed(make_container(database), SPECS)
    yield database
    database.close()


@pytest.fixture
def cli(db, monkeypatch, capsys, tmp_path):
    yield from in_process_cli(monkeypatch, capsys, cwd=tmp_path, url=db.url,
                              env={"COLLECTGUARD_ENVIRONMENT": "test"})


def test_daily_json_matches_the_contract_and_the_oracle(cli):
    r = cli("daily", "--as-of", D.isoformat(), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert {"as_of", "loans", "buckets", "cases_opened", "cases_closed", "ptp", "queue", "seconds"} <= set(
        out
    )
    assert out["as_of"] == "2026-04-07"
    want: dict[str, int] = {}
    for spec in SPECS:
        d = oracle(spec)
        if d is not None:
            want[d.bucket] = want.get(d.bucket, 0) + 1
    assert out["loans"] == sum(want.values()) == sum(out["buckets"].values())
    assert {k: v for k, v in out["buckets"].items() if v} == want
    assert list(out["buckets"]) == ["M0", "M1", "M2", "M3", "M4", "M5", "M6", "M6+", "closed"]

    again = cli("daily", "--as-of", D.isoformat(), "--json")
    assert json.loads(again.stdout) == out  # the same date again: nothing recomputed, same answer

    text = cli("daily", "--as-of", D.isoformat())
    assert text.returncode == 0 and "daily run 2026-04-07" in text.stdout


def test_bad_dates_and_backwards_runs_exit_2(cli):
    r = cli("daily", "--as-of", "2026-02-30")
    assert r.returncode == 2 and "--as-of" in r.stderr
    cli("daily", "--as-of", D.isoformat(), "--json")
    back = cli("daily", "--as-of", "2026-01-01", "--json")
    assert back.returncode == 2 and "forward" in back.stderr
