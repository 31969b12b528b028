"""Fault injection, the short variant for CI (bench/faults.py runs the long one, >= 50 kills).

* SIGKILL of API workers mid-request (real ``uvicorn --workers 2`` on PostgreSQL): nothing lost,
  nothing doubled, every attempt with its decision and audit records, no cap passed, audit verify green.
* SIGKILL of ``collectguard daily`` at random moments: the rerun equals an uninterrupted run.
* The database unreachable (a closed port): the guard API never allows; it answers 503 problem+json.
* A read-only database or a full disk: the CLI exits non-zero with one line on stderr (no traceback,
  no SQL, no parameters); the API never allows and answers 503.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import faults
from attempts_load import free_port

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_ENV = "COLLECTGUARD_TEST_POSTGRES_URL"
EVENT = {"jurisdiction": "CN", "channel": "call", "time": "2026-03-02T10:00:00+08:00",
         "recipient": {"role": "borrower"}}


def _probe(url: str, token: str | None) -> list[Any]:
    """POST the guard check and a contact attempt through the app on ``url``; (status, type, body)."""
    from fastapi.testclient import TestClient

    from collectguard.adapters.crypto import PiiCipher
    from collectguard.adapters.db.engine import make_engine, session_factory
    from collectguard.api.app import create_app
    from collectguard.bootstrap import Container
    from collectguard.settings import Settings

    st = Settings(database_url=url, environment="test", log_level="CRITICAL")
    eng = make_engine(url)
    c = Container(settings=st, engine=eng, sessions=session_factory(eng), cipher=PiiCipher(st.pii_key_bytes()))
    auth = {"Authorization": f"Bearer {token or 'cg_unknown'}"}
    attempt = {"loan_id": 1, "channel": "call", "recipient": {"role": "borrower"}}
    try:
        with TestClient(create_app(c), raise_server_exceptions=False) as client:
            return [client.post(p, json=b, headers=auth)
                    for p, b in (("/api/v1/guard/check", EVENT), ("/api/v1/contact-attempts", attempt))]
    finally:
        eng.dispose()


def _never_allows(responses: list[Any]) -> None:
    for r in responses:
        assert r.status_code >= 400 and '"allow"' not in r.text, r.text[:300]
        assert r.headers["content-type"] == "application/problem+json"
        assert "Traceback" not in r.text


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([faults.CG, "--database-url", url, *args], capture_output=True, text=True, timeout=300)


# ---- SIGKILL ---------------------------------------------------------------------------------------

@pytest.mark.postgres
def test_sigkill_of_api_workers_loses_and_doubles_nothing():
    if not os.environ.get(PG_ENV):
        if IN_CI:
            pytest.fail(f"CI=true but {PG_ENV} is not set")
        pytest.skip(f"needs PostgreSQL: set {PG_ENV} (several uvicorn workers on one database)")
    r = faults.api_kills(kills=3, borrowers=20, clients=6, seed=11)
    assert r["kills"] == 3
    assert r["responses"].get("201", 0) > 0
    assert r["problems"] == [], r
    assert r["audit_verify_exit"] == 0


def test_sigkill_of_the_daily_run_then_a_rerun_equals_an_uninterrupted_run():
    r = faults.daily_kills(kills=2, loans=500, backend="sqlite", seed=7)
    assert r["trials"] == 2
    assert r["problems"] == [], r


# ---- database unreachable ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def unreachable():
    return _probe(f"postgresql+psycopg://root@127.0.0.1:{free_port()}/test?connect_timeout=2", None)


def test_an_unreachable_database_never_allows(unreachable):
    _never_allows(unreachable)


def test_an_unreachable_database_answers_503(unreachable):
    assert [r.status_code for r in unreachable] == [503, 503]
    assert {r.json()["code"] for r in unreachable} == {"unavailable"}


# ---- read-only and full disk -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def read_only_db(tmp_path_factory):
    """A migrated SQLite database with demo data and a collector token, opened read-only."""
    db = tmp_path_factory.mktemp("ro") / "cg.db"
    assert _cli(f"sqlite:///{db}", "demo", "--loans", "30").returncode == 0
    token = _cli(f"sqlite:///{db}", "token", "create", "--tenant", "demo-lender", "--role", "collector").stdout.strip()
    return db, f"sqlite:///file:{db}?mode=ro&uri=true", token


def test_the_cli_on_a_read_only_database_fails_without_a_traceback(read_only_db):
    _, url, _ = read_only_db
    r = _cli(url, "daily", "--as-of", "2026-04-07")
    assert r.returncode != 0 and "Traceback" not in r.stderr


def test_the_cli_on_a_read_only_database_says_so_in_one_line(read_only_db):
    _, url, _ = read_only_db
    r = _cli(url, "daily", "--as-of", "2026-04-07")
    assert len(r.stderr.strip().splitlines()) == 1 and "[SQL:" not in r.stderr


def test_the_api_on_a_read_only_database_never_allows(read_only_db):
    _, url, token = read_only_db
    _never_allows(_probe(url, token))


def test_the_api_on_a_read_only_database_answers_503(read_only_db):
    _, url, token = read_only_db
    assert [r.status_code for r in _probe(url, token)] == [503, 503]


@contextlib.contextmanager
def _tmpfs(size_kb: int):
    where = Path(tempfile.mkdtemp(prefix="cg-full-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(where)],
                             capture_output=True, check=False).returncode == 0
    try:
        yield where if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", str(where)], capture_output=True, check=False)
        shutil.rmtree(where, ignore_errors=True)


def test_the_cli_on_a_full_disk_fails_in_one_line(read_only_db):
    db, _, _ = read_only_db
    with _tmpfs(db.stat().st_size // 1024 + 96) as full:
        if full is None:
            pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): no full disk to test on")
        shutil.copy(db, full / "cg.db")
        with contextlib.suppress(OSError), (full / "filler").open("wb") as f:
            while True:  # fill the file system to the last block
                f.write(b"\0" * 4096)
        r = _cli(f"sqlite:///{full / 'cg.db'}", "daily", "--as-of", "2026-04-07")
    assert r.returncode != 0
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
