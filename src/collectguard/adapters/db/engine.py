"""Engine creation and schema migration for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from collectguard.errors import BadInput, Unavailable

MIGRATIONS = Path(__file__).with_name("migrations")
POOL_OVERFLOW = 4  # beyond the pool: the odd connection not taken by an API worker thread (see make_engine)


def normalise_url(url: str) -> str:
    """Accept the usual spellings and pick psycopg 3 for PostgreSQL."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def make_engine(url: str, *, pool_size: int = 16, ping_idle_s: float = 10.0, **kwargs: Any) -> Engine:
    """An engine for ``url``. SQLite gets WAL, foreign keys and a busy timeout on every connection.

    PostgreSQL keeps ``pool_size`` connections open (``Settings.db_pool_size``; the API caps its
    worker threads at the same number, so a request never needs a connection beyond the pool: one
    opened and closed per request cost the server ~2 ms of CPU, more than the request itself). A
    connection idle for longer than ``ping_idle_s`` is tested before use (``_ping_when_idle``).
    """
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise BadInput(f"not a database URL: {url!r}", field="database_url") from exc
    if parsed.get_backend_name() == "sqlite":
        kwargs.setdefault("connect_args", {"timeout": 30})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _rec: Any) -> None:
            # Let SQLAlchemy, not the driver, open transactions, so BEGIN IMMEDIATE works.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    kwargs.setdefault("pool_size", pool_size)
    kwargs.setdefault("max_overflow", POOL_OVERFLOW)
    engine = create_engine(url, **kwargs)
    _ping_when_idle(engine, ping_idle_s)
    return engine


def _ping_when_idle(engine: Engine, idle_s: float) -> None:
    """Test a pooled connection before use only when it has been idle for more than ``idle_s``.

    ``pool_pre_ping`` tests on every checkout: a round trip (two: the test opens a transaction that
    must be rolled back) per unit of work, where a busy pool's connections were used a moment ago.
    A connection that sat idle is the one a restarted server, a failover or a firewall timeout has
    killed: it is tested, and a dead one is replaced (raising ``DisconnectionError`` here makes the
    pool reconnect and try again). A connection that dies while the pool is busy fails its unit of
    work — rolled back, 503, never an allow — and SQLAlchemy then discards every connection of the
    pool opened before the failure, so one request per process sees a restart, not one per connection.
    """

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_conn: Any, record: Any) -> None:
        record.info["cg_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("cg_idle_since", None)
        if since is None or time.monotonic() - since <= idle_s:
            return  # new, or in use a moment ago
        try:
            cur = dbapi_conn.cursor()
            try:
                cur.execute("SELECT 1")
            finally:
                cur.close()
            dbapi_conn.rollback()
        except Exception as exc:  # any failure: this connection is not to be trusted with a unit of work
            raise DisconnectionError(f"pooled connection dead after {time.monotonic() - since:.0f} s idle") from exc


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the Alembic migrations up to ``revision`` (creates the database when missing)."""
    from alembic import command

    try:
        with engine.connect() as conn:
            cfg = _alembic_config(engine)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            conn.commit()
    except OperationalError as exc:
        raise Unavailable(f"database unreachable: {exc.orig}") from exc


def current_revision(engine: Engine) -> str | None:
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def is_initialised(engine: Engine) -> bool:
    with engine.connect() as conn:
        return inspect(conn).has_table("alembic_version")
