"""The composition root: builds the real adapters from Settings and hands them to the edges."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from collectguard.adapters.crypto import PiiCipher
from collectguard.adapters.db.engine import is_initialised, make_engine, session_factory, upgrade
from collectguard.settings import Settings


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Container:
    """Everything a service needs from the outside world, built once per process."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    cipher: PiiCipher
    clock: Callable[[], dt.datetime] = field(default=utc_now)
    # Tests bind the container to one connection inside an outer transaction; each unit of work
    # is then a savepoint, and the test's outer rollback leaves the database as it found it.
    connection: Connection | None = None

    @contextmanager
    def uow(self, *, write: bool = True) -> Iterator[Session]:
        """A unit of work: one transaction, committed on success, rolled back on any error.

        On SQLite a writing unit of work takes the write lock up front (BEGIN IMMEDIATE) so that
        read-check-insert sequences (caps, the audit chain) are atomic across processes.
        """
        if self.connection is not None:
            session = self.sessions(bind=self.connection, join_transaction_mode="create_savepoint")
            try:
                yield session
                session.commit()  # releases the savepoint; the outer transaction stays open
            except BaseException:
                session.rollback()
                raise
            finally:
                session.close()
            return
        opts: dict[str, Any] = {"sqlite_begin": "IMMEDIATE"} if write and self.settings.is_sqlite else {}
        conn = self.engine.connect().execution_options(**opts)
        session = self.sessions(bind=conn)
        try:
            with conn.begin():
                yield session
                session.flush()
        finally:
            session.close()
            conn.close()


def pii_cipher(settings: Settings) -> PiiCipher:
    """The PII cipher of ``settings``: the current key, the retired keys still readable, the look-up key."""
    key_id, key, old_keys, hmac_key = settings.pii_keyring()
    return PiiCipher(key, key_id=key_id, old_keys=old_keys, hmac_key=hmac_key)


def build(settings: Settings | None = None, *, migrate: bool = True) -> Container:
    """Build the container; with ``migrate`` the database is created or upgraded to the latest schema."""
    settings = settings or Settings()
    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size, ping_idle_s=settings.db_ping_idle_s)
    if migrate:
        upgrade(engine)
    elif not is_initialised(engine):
        upgrade(engine)
    container = Container(settings=settings, engine=engine, sessions=session_factory(engine),
                          cipher=pii_cipher(settings))
    from collectguard.services.audit_signing import audit_signer_attach

    # Appends then sign a checkpoint every N records themselves (docs/audit.md).
    audit_signer_attach(container)
    return container
