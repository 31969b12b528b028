"""``collectguard user …`` / ``token …`` through the real command line (a subprocess), both backends."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from collectguard.adapters.db.models import AuditRecord
from collectguard.api.app import create_app
from collectguard.bootstrap import utc_now
from conftest import create_database, in_process_cli, make_container

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request, tmp_path_factory):
    database = create_database(request.param, tmp_path_factory)
    yield database
    database.close()


@pytest.fixture
def cli(db, monkeypatch, capsys, tmp_path):
    """Run the CLI in this process (``main(argv)``, exit code and output as a user sees them).

    In-process keeps the suite fast; ``test_the_real_entry_point_…`` runs one subprocess end to end.
    """
    yield from in_process_cli(monkeypatch, capsys, cwd=tmp_path, url=db.url)


@pytest.fixture(scope="module")
def client(db):
    container = dataclasses.replace(make_container(db, log_json=False, log_level="WARNING"), clock=utc_now)
    return TestClient(create_app(container))


def test_the_real_entry_point_creates_a_user_and_prints_a_working_token(db, client, tmp_path):
    env = {**os.environ, "COLLECTGUARD_DATABASE_URL": db.url}

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "collectguard", *args], input=stdin, capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=120, check=False)

    made = run("user", "create", "--tenant", "lender-1", "--username", "zhang.wei", "--role", "collector",
               "--password-stdin", "--create-tenant", stdin=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    user_id = int(made.stdout.strip())

    issued = run("token", "create", "--tenant", "lender-1", "--role", "collector", "--user", "zhang.wei",
                 "--expires-days", "7")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    assert issued.stdout.count("\n") == 1 and len(token) == 43  # only the token on stdout
    assert "token id" in issued.stderr

    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    body = me.json()
    assert (body["user_id"], body["role"], body["tenant"]) == (user_id, "collector", "lender-1")

    with db.engine.connect() as conn:
        actions = list(conn.scalars(select(AuditRecord.action)))
    assert {"tenant.create", "user.create", "token.create"} <= set(actions)


def test_token_revoke_by_id_and_by_token(cli, client):
    assert cli("user", "create", "--tenant", "lender-2", "--username", "auditor2", "--role", "auditor",
               "--password-stdin", "--create-tenant", stdin=PASSWORD).returncode == 0
    first = cli("token", "create", "--tenant", "lender-2", "--role", "auditor").stdout.strip()
    second = cli("token", "create", "--tenant", "lender-2", "--role", "auditor").stdout.strip()
    listed = [json.loads(line) for line in cli("token", "list", "--tenant", "lender-2").stdout.splitlines()]
    assert len(listed) == 2 and all("hash" not in str(row) for row in listed)

    assert cli("token", "revoke", str(listed[-1]["id"])).returncode == 0  # the oldest: ``first``
    assert cli("token", "revoke", "--token-stdin", stdin=second + "\n").returncode == 0
    for token in (first, second):
        assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


NEW_USER = ("user", "create", "--username", "li.na", "--password-stdin")


@pytest.mark.parametrize(("args", "stdin", "message"), [
    ((*NEW_USER, "--tenant", "lender-3", "--role", "boss", "--create-tenant"), PASSWORD, "unknown role"),
    ((*NEW_USER, "--tenant", "lender-3", "--role", "collector", "--create-tenant"), "short", "at least 10"),
    ((*NEW_USER, "--tenant", "nowhere", "--role", "collector"), PASSWORD, "--create-tenant"),
    (("token", "create", "--tenant", "lender-1", "--role", "overlord"), "", "unknown role"),
    (("token", "create", "--tenant", "nowhere", "--role", "auditor"), "", "unknown tenant"),
    (("token", "revoke", "999999"), "", "unknown token"),
    (("token", "revoke"), "", "TOKEN_ID"),
])
def test_bad_input_exits_2_with_a_message(cli, args, stdin, message):
    result = cli(*args, stdin=stdin)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr and result.stdout == ""


def test_weak_password_creates_nothing(cli):
    result = cli("user", "create", "--tenant", "lender-4", "--username", "wang.fang", "--role", "admin",
                 "--password-stdin", "--create-tenant", stdin="1234567\n")
    assert result.returncode == 2
    again = cli("user", "create", "--tenant", "lender-4", "--username", "wang.fang", "--role", "admin",
                "--password-stdin", stdin=PASSWORD)
    assert again.returncode == 2 and "--create-tenant" in again.stderr  # the tenant was not created either
