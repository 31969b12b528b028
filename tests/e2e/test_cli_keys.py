"""``collectguard keys rotate|status|hmac-key|generate`` through the command line, both backends: a full rotation
from the development key to a new one, old key removed afterwards; missing and wrong keys exit 2 with a message."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from collectguard.adapters.crypto import derive_hmac_key
from collectguard.adapters.db.models import Borrower, Contact
from collectguard.bootstrap import build
from collectguard.cli import context
from collectguard.cli.main import main
from collectguard.settings import Settings
from conftest import create_database


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def cli(request, tmp_path_factory, monkeypatch, capsys, tmp_path):
    db = create_database(request.param, tmp_path_factory)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLLECTGUARD_DATABASE_URL", db.url)
    monkeypatch.setenv("COLLECTGUARD_LOG_JSON", "false")
    for name in ("PII_KEY", "PII_KEY_ID", "PII_OLD_KEYS", "PII_HMAC_KEY", "ENVIRONMENT", "SECRET_KEY"):
        monkeypatch.delenv(f"COLLECTGUARD_{name}", raising=False)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        if context._CONTAINER is not None:
            context._CONTAINER.engine.dispose()
        monkeypatch.setattr(context, "_CONTAINER", None)  # each command builds from the environment as it is
        monkeypatch.setattr(sys, "stdin", io.StringIO(""))
        with pytest.raises(SystemExit) as exit_:
            main(list(args))
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), int(exit_.value.code or 0), out, err)

    run.db = db
    yield run
    if context._CONTAINER is not None:
        context._CONTAINER.engine.dispose()
    db.close()


def people(db_url: str) -> dict[tuple[str, int], tuple[str, str]]:
    """Every borrower's and contact's name and phone, read the way the server reads them (``build``)."""
    c = build(Settings(database_url=db_url))
    try:
        with c.uow(write=False) as s:
            return {(m.__tablename__, r.id): (c.cipher.decrypt(r.name_enc), c.cipher.decrypt(r.phone_enc))
                    for m in (Borrower, Contact) for r in s.scalars(select(m))}
    finally:
        c.engine.dispose()


def test_rotate_from_the_development_key_then_retire_it(cli, monkeypatch):
    assert cli("demo", "--loans", "30", "--seed", "9").returncode == 0
    before = people(cli.db.url)
    k1 = Settings().pii_key_bytes()  # the development key, derived from the default secret

    missing = cli("keys", "rotate")
    assert missing.returncode == 2 and "COLLECTGUARD_PII_KEY is not set" in missing.stderr

    new = cli("keys", "generate").stdout.strip()
    assert len(base64.b64decode(new)) == 32 and new != cli("keys", "generate").stdout.strip()
    monkeypatch.setenv("COLLECTGUARD_PII_KEY", new)
    monkeypatch.setenv("COLLECTGUARD_PII_KEY_ID", "2")
    unpinned = cli("keys", "rotate")
    assert unpinned.returncode == 2 and "COLLECTGUARD_PII_HMAC_KEY must be set" in unpinned.stderr

    monkeypatch.setenv("COLLECTGUARD_PII_OLD_KEYS", "1:" + b64(os.urandom(32)))
    wrong = cli("keys", "rotate")
    assert wrong.returncode == 2 and "wrong key: the key with id 1" in wrong.stderr
    assert "Traceback" not in wrong.stderr

    monkeypatch.setenv("COLLECTGUARD_PII_OLD_KEYS", "1:not-base64")
    garbled = cli("keys", "status")
    assert garbled.returncode == 2 and "COLLECTGUARD_PII_OLD_KEYS key 1 must be base64" in garbled.stderr

    monkeypatch.setenv("COLLECTGUARD_PII_OLD_KEYS", "1:" + b64(k1))
    hmac_key = cli("keys", "hmac-key").stdout.strip()
    assert base64.b64decode(hmac_key) == derive_hmac_key(k1)
    status = json.loads(cli("keys", "status").stdout)
    assert status["old_keys_needed"] == [1] and status["current_key_id"] == 2

    done = cli("keys", "rotate", "--batch-size", "16")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["values"] > 2 * len(before) and result["from_key_ids"] == [1]
    assert result["old_keys_still_needed"] == []
    again = json.loads(cli("keys", "rotate").stdout)
    assert again["values"] == 0 and again["from_key_ids"] == []

    # Retire key 1: without the pinned look-up key the settings refuse; with it, everything reads.
    monkeypatch.delenv("COLLECTGUARD_PII_OLD_KEYS")
    refused = cli("keys", "status")
    assert refused.returncode == 2 and "COLLECTGUARD_PII_HMAC_KEY" in refused.stderr
    monkeypatch.setenv("COLLECTGUARD_PII_HMAC_KEY", hmac_key)
    status = json.loads(cli("keys", "status").stdout)
    assert status["key_ids_in_use"] == [2] and status["old_key_ids"] == [] and status["hmac_key"] == "explicit"
    assert people(cli.db.url) == before
    assert cli("audit", "verify").returncode == 0

    # Forgetting the key id with a new key: data under id 2 is not readable with it, refused up front.
    monkeypatch.setenv("COLLECTGUARD_PII_KEY", b64(os.urandom(32)))
    forgot = cli("keys", "rotate")
    assert forgot.returncode == 2 and "a new key needs a new COLLECTGUARD_PII_KEY_ID" in forgot.stderr
