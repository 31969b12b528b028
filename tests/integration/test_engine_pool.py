"""The connection pool: reused under concurrency, dead connections replaced, the API's threads capped to it."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import anyio
import anyio.to_thread
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from collectguard.adapters.db.engine import POOL_OVERFLOW, make_engine
from collectguard.api.app import _threads_to_the_pool, create_app
from conftest import make_container


def _pid(engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(text("SELECT pg_backend_pid()")))


def _kill(database, pid: int) -> None:
    with database.engine.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        conn.commit()
    time.sleep(0.2)  # the backend exits asynchronously


@pytest.fixture
def pg(database):
    if database.backend != "postgres":
        pytest.skip("PostgreSQL pool")
    return database


def test_as_many_threads_as_pooled_connections_reuse_them(pg) -> None:
    engine = make_engine(pg.url, pool_size=3)
    try:
        assert (engine.pool.size(), engine.pool._max_overflow) == (3, POOL_OVERFLOW)
        with ThreadPoolExecutor(3) as ex:
            pids = set(ex.map(lambda _i: _pid(engine), range(60)))
        assert len(pids) <= 3  # never a connection opened and closed per unit of work
    finally:
        engine.dispose()


def test_a_connection_killed_while_idle_is_replaced_before_use(pg) -> None:
    engine = make_engine(pg.url, pool_size=2, ping_idle_s=0.05)
    try:
        first = _pid(engine)
        _kill(pg, first)  # a restarted server, a failover, a firewall timeout
        second = _pid(engine)  # no error: tested at checkout, replaced
        assert second != first
    finally:
        engine.dispose()


def test_a_connection_killed_while_busy_fails_its_unit_of_work_once(pg) -> None:
    """Not tested at checkout (used a moment ago): the unit of work fails — the caller answers 503, never
    allows — and the pool drops its old connections, so the next unit of work runs on a new one."""
    engine = make_engine(pg.url, pool_size=2, ping_idle_s=3600)
    try:
        first = _pid(engine)
        _kill(pg, first)
        with pytest.raises(OperationalError), engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        assert _pid(engine) != first
    finally:
        engine.dispose()


def test_ping_idle_zero_tests_every_checkout(pg) -> None:
    engine = make_engine(pg.url, pool_size=1, ping_idle_s=0)
    try:
        first = _pid(engine)
        _kill(pg, first)
        assert _pid(engine) != first
    finally:
        engine.dispose()


def test_sqlite_ignores_the_pool_settings(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}", pool_size=3, ping_idle_s=0)
    try:
        with engine.connect() as conn:
            assert conn.scalar(text("PRAGMA foreign_keys")) == 1
    finally:
        engine.dispose()


def test_the_api_caps_its_threads_at_the_pool_on_postgresql_only(database) -> None:
    container = make_container(database, db_pool_size=7)
    app = create_app(container)

    async def tokens() -> float:
        async with _threads_to_the_pool(container)(app):
            return anyio.to_thread.current_default_thread_limiter().total_tokens

    assert anyio.run(tokens) == (40 if database.backend == "sqlite" else 7)  # 40: AnyIO's default
