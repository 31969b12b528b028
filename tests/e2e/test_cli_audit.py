"""``collectguard audit …`` and ``retention run`` through the command line, both backends."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import create_database, in_process_cli, make_container

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))
from _audit_seed import execute, noise, seed_borrower


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request, tmp_path_factory):
    database = create_database(request.param, tmp_path_factory)
    c = make_container(database)
    seed_borrower(c)
    noise(c, n=4)
    seed_borrower(c, ext_id="OLD", closed=True, when=dt.datetime(2021, 1, 4, tzinfo=dt.UTC))
    yield database
    database.close()


@pytest.fixture
def cli(db, monkeypatch, capsys, tmp_path):
    """Run the CLI in this process, with exit code and output as a user sees them."""
    yield from in_process_cli(monkeypatch, capsys, cwd=tmp_path, url=db.url,
                              env={"COLLECTGUARD_ENVIRONMENT": "test"})


def test_the_audit_story_end_to_end(cli, db, tmp_path):
    ok = cli("audit", "verify")
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["status"] == "intact" and report["records"] >= 14

    one = cli("audit", "verify", "--chain", "t1")
    assert one.returncode == 0 and [h["chain"] for h in json.loads(one.stdout)["heads"]] == ["t1"]

    cp = cli("audit", "checkpoint")
    assert cp.returncode == 0 and json.loads(cp.stdout)["signed"] >= 1

    out = tmp_path / "B1.zip"
    exp = cli("audit", "export", "--borrower", "B1", "--out", str(out))
    assert exp.returncode == 0, exp.stderr
    key_id = json.loads(exp.stdout)["key_id"]

    # Offline: a database URL that cannot be reached proves no database is opened.
    vb = cli(
        "--database-url",
        "postgresql://nobody@127.0.0.1:1/none",
        "audit",
        "verify-bundle",
        str(out),
        "--key-id",
        key_id,
    )
    assert vb.returncode == 0, vb.stderr
    assert json.loads(vb.stdout)["status"] == "valid"
    bad = tmp_path / "bad.zip"
    bad.write_bytes(out.read_bytes().replace(b"manifest", b"manifesT", 1))
    assert cli("audit", "verify-bundle", str(bad)).returncode in (1, 2)
    wrong_key = cli("audit", "verify-bundle", str(out), "--key-id", "0" * 16)
    assert wrong_key.returncode == 1 and "expected" in wrong_key.stderr

    dry = cli("retention", "run", "--as-of", "2026-05-01", "--dry-run")
    assert dry.returncode == 0 and json.loads(dry.stdout)["borrowers_expired"] == 1
    run = cli("retention", "run", "--as-of", "2026-05-01")
    assert json.loads(run.stdout)["anonymised"]["borrowers"] == 1
    assert cli("audit", "verify").returncode == 0
    assert cli("retention", "run", "--as-of", "May 1").returncode == 2

    execute(make_container(db), "UPDATE audit_record SET payload = '{}' WHERE chain = 't1' AND seq = 3")
    broken = cli("audit", "verify")
    assert broken.returncode == 1
    assert "audit chain t1 broken at seq 3" in broken.stderr
    assert json.loads(broken.stdout)["faults"][0] == {
        "chain": "t1",
        "seq": 3,
        "reason": "hash mismatch: the record was altered",
    }


def test_bad_input_exits_2(cli, tmp_path):
    r = cli("audit", "export", "--borrower", "nobody", "--out", str(tmp_path / "x.zip"))
    assert r.returncode == 2 and "no such borrower" in r.stderr
    (tmp_path / "file").write_text("x")
    r = cli("audit", "export", "--borrower", "B1", "--out", str(tmp_path / "file" / "x.zip"))
    assert r.returncode == 2 and "cannot write" in r.stderr


def test_the_real_entry_point_verifies(db, tmp_path):
    env = {"COLLECTGUARD_DATABASE_URL": db.url, "COLLECTGUARD_ENVIRONMENT": "test", "PATH": "/usr/bin:/bin"}
    r = subprocess.run(
        [sys.executable, "-m", "collectguard", "audit", "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert r.returncode == 0 and "verify-bundle" in r.stdout
