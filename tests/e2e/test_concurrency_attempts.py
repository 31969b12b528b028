"""No cap can be exceeded under concurrency: 40 simultaneous calls to one unanswered number -> exactly
6 allowed (CBA 2026: at most 6 attempts a day to one number), 34 denied, 6 rows stored.

Twice on each backend: 40 threads in this process, and 40 HTTP requests against a real
``uvicorn --workers 3`` (three processes, each with its own connection pool) on a loopback port.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select

from collectguard.adapters.db.models import ContactAttempt, Decision
from collectguard.errors import Denied
from collectguard.services import accounts
from collectguard.services.attempts import contact_attempt_request
from conftest import create_database, make_container

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
from test_attempts_seed import seed

N, CAP = 40, 6

APP = '''
from collectguard.api.app import create_app
from collectguard.bootstrap import build


def app():
    return create_app(build())
'''


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request, tmp_path_factory):
    database = create_database(request.param, tmp_path_factory)
    yield database
    database.close()


def stored(db):
    with db.engine.connect() as conn:
        return (conn.scalar(select(func.count()).select_from(ContactAttempt)),
                conn.scalar(select(func.count()).select_from(Decision)))


def test_threads_in_one_process(db):
    c = make_container(db)  # real commits: every request is its own transaction
    w = seed(c)
    start = threading.Barrier(N)

    def one(_: int) -> str:
        start.wait()
        try:
            contact_attempt_request(c, principal=w["collector"], channel="call", case_id=w["case"], role="borrower")
            return "allow"
        except Denied as exc:
            assert {v["rule"] for v in exc.decision["violations"]} == {"cn.attempts_same_number_cap"}
            return "deny"

    with ThreadPoolExecutor(N) as pool:
        results = list(pool.map(one, range(N)))
    assert (results.count("allow"), results.count("deny")) == (CAP, N - CAP)
    assert stored(db) == (CAP, N)  # every decision recorded, allowed or not


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> int:
    n = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                n += 1
        except (OSError, IndexError, ValueError):
            continue
    return n


@pytest.fixture
def server(db, tmp_path):
    """``uvicorn --workers 3`` on a free loopback port against ``db``; yields its base URL."""
    (tmp_path / "cg_asgi.py").write_text(APP, encoding="utf-8")
    port = _free_port()
    env = {**os.environ, "COLLECTGUARD_DATABASE_URL": db.url, "COLLECTGUARD_ENVIRONMENT": "test",
           "COLLECTGUARD_LOG_LEVEL": "WARNING", "COLLECTGUARD_LOG_JSON": "false"}
    log = (tmp_path / "uvicorn.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "cg_asgi:app", "--app-dir", str(tmp_path),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "3", "--log-level", "warning"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"uvicorn exited: {(tmp_path / 'uvicorn.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200 and _children(proc.pid) >= 3:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"uvicorn did not start: {(tmp_path / 'uvicorn.log').read_text()[-2000:]}")
            time.sleep(0.3)
        time.sleep(1.0)  # let every worker finish its start-up, not only the first to answer
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def test_several_uvicorn_workers(db, server):
    base, proc = server
    c = make_container(db)
    w = seed(c)
    with c.uow() as s:
        # The server checks the token's expiry on the real clock.
        token = accounts.token_create(s, tenant_code="lender-a", role="collector", actor="test",
                                      now=dt.datetime.now(dt.UTC))[1]
    assert _children(proc.pid) >= 3
    # The server runs on the real clock: reserve tomorrow at 10:00 in Beijing (always ahead, inside a week).
    bj = dt.datetime.now(ZoneInfo("Asia/Shanghai")) + dt.timedelta(days=1)
    when = bj.replace(hour=10, minute=0, second=0, microsecond=0).isoformat()
    body = {"case_id": w["case"], "channel": "call", "recipient": {"role": "borrower"}, "time": when}
    start = threading.Barrier(N)
    limits = httpx.Limits(max_connections=N, max_keepalive_connections=0)
    with httpx.Client(base_url=base, timeout=60, limits=limits,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        def one(_: int) -> httpx.Response:
            start.wait()
            return client.post("/api/v1/contact-attempts", json=body)

        with ThreadPoolExecutor(N) as pool:
            responses = list(pool.map(one, range(N)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * CAP + [403] * (N - CAP), [r.text[:300] for r in responses if r.status_code >= 500]
    for r in responses:
        if r.status_code == 403:
            assert {v["rule"] for v in r.json()["decision"]["violations"]} == {"cn.attempts_same_number_cap"}
    assert len({r.json()["attempt_id"] for r in responses if r.status_code == 201}) == CAP
    assert stored(db) == (CAP, N)
