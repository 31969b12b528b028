"""Test fixtures: real migrations on SQLite and PostgreSQL, a savepoint per test.

PostgreSQL comes from ``COLLECTGUARD_TEST_POSTGRES_URL`` (e.g. postgresql://root@127.0.0.1:5432/test).
Without it the PostgreSQL tests skip with a message; under ``CI=true`` a missing or unreachable
PostgreSQL fails the run instead.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from collectguard.adapters.crypto import PiiCipher
from collectguard.adapters.db.engine import make_engine, normalise_url, session_factory, upgrade
from collectguard.bootstrap import Container
from collectguard.settings import Settings

PG_ENV = "COLLECTGUARD_TEST_POSTGRES_URL"
IN_CI = os.environ.get("CI", "").lower() == "true"
FIXED_NOW = dt.datetime(2026, 4, 7, 2, 0, tzinfo=dt.UTC)  # 10:00 in Beijing


def _pg_admin_url() -> str | None:
    url = os.environ.get(PG_ENV)
    if not url:
        if IN_CI:
            pytest.fail(f"CI=true but {PG_ENV} is not set: PostgreSQL tests must run in CI")
        return None
    return normalise_url(url)


def _skip_or_fail(msg: str) -> None:
    if IN_CI:
        pytest.fail(msg)
    pytest.skip(msg)


class Database:
    """A freshly migrated database of one backend, private to this test session (and xdist worker)."""

    def __init__(self, backend: str, url: str, cleanup: callable) -> None:  # type: ignore[valid-type]
        self.backend = backend
        self.url = url
        self.engine = make_engine(url)
        upgrade(self.engine)
        self._cleanup = cleanup

    def close(self) -> None:
        self.engine.dispose()
        self._cleanup()


def create_database(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Database:
    """A new, migrated database; used by the session fixtures and by tests needing real commits."""
    if backend == "sqlite":
        path = Path(tmp_path_factory.mktemp("db")) / f"cg-{uuid.uuid4().hex[:8]}.db"
        return Database("sqlite", f"sqlite:///{path}", lambda: None)
    admin = _pg_admin_url()
    if admin is None:
        pytest.skip(f"PostgreSQL tests skipped: set {PG_ENV} (e.g. postgresql://root@127.0.0.1:5432/test)")
    name = f"cg_test_{uuid.uuid4().hex[:12]}"
    try:
        admin_engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with admin_engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        _skip_or_fail(f"PostgreSQL at {admin} is unreachable: {exc}")
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin_engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()

    return Database("postgres", url, drop)


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    db = create_database(request.param, tmp_path_factory)
    yield db
    db.close()


def make_container(db: Database, **settings: object) -> Container:
    s = Settings(database_url=db.url, environment="test", **settings)  # type: ignore[arg-type]
    return Container(settings=s, engine=db.engine, sessions=session_factory(db.engine),
                     cipher=PiiCipher(s.pii_key_bytes()), clock=lambda: FIXED_NOW)


@pytest.fixture
def container(database: Database) -> Iterator[Container]:
    """A container whose every unit of work is a savepoint inside one rolled-back transaction."""
    c = make_container(database)
    conn = database.engine.connect()
    outer = conn.begin()
    c.connection = conn
    try:
        yield c
    finally:
        outer.rollback()
        conn.close()


def in_process_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *, cwd: Path,
                   url: str | None = None, env: dict[str, str] | None = None) -> Iterator[object]:
    """For a ``cli`` fixture (``yield from in_process_cli(...)``): run ``collectguard`` in this process.

    ``run(*args, stdin="")`` returns a ``CompletedProcess`` with the exit code and the output exactly as
    a user sees them, and fails on a traceback; ``cwd`` keeps a default SQLite file out of the repo;
    ``url`` sets the database; the CLI's own engine is disposed afterwards.
    """
    import io
    import subprocess
    import sys

    from collectguard.cli import context
    from collectguard.cli.main import main

    monkeypatch.chdir(cwd)
    if url is not None:
        monkeypatch.setenv("COLLECTGUARD_DATABASE_URL", url)
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(context, "_CONTAINER", None)

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode("utf-8")), encoding="utf-8"))
        with pytest.raises(SystemExit) as exit_:
            main(list(args))
        out, err = capsys.readouterr()
        assert "Traceback" not in err, err
        return subprocess.CompletedProcess(list(args), int(exit_.value.code or 0), out, err)

    yield run
    if context._CONTAINER is not None:  # the CLI's own engine: close its pooled connections
        context._CONTAINER.engine.dispose()
