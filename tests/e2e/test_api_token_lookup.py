"""The token look-up outside the tests' savepoint connection (on PostgreSQL: one autocommit statement).

Every other API test binds the container to one connection, so the look-up there is a unit of work;
this one runs against a real, committed database of each backend, as a served app does: a token
works, is refused on the very next request once revoked or expired, and an unknown one is 401.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from fastapi.testclient import TestClient

from collectguard.api.app import create_app
from collectguard.services.accounts import tenant_create, token_create, token_revoke
from conftest import FIXED_NOW, create_database, make_container


@pytest.fixture
def served(database, tmp_path_factory):
    db = create_database(database.backend, tmp_path_factory)
    try:
        c = make_container(db, log_level="CRITICAL")
        assert c.connection is None  # the look-up takes its own connection, as when served
        with c.uow() as s:
            tenant_create(s, code="lender-t", actor="t", now=FIXED_NOW)
            row, token = token_create(s, tenant_code="lender-t", role="collector", expires_days=1, actor="t",
                                      now=FIXED_NOW)  # fmt: skip
        yield c, row.id, token
    finally:
        db.close()


def _me(c, token: str) -> int:
    with TestClient(create_app(c)) as client:
        return client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code


def test_a_token_works_until_revoked_then_never(served) -> None:
    c, token_id, token = served
    assert _me(c, token) == 200
    assert _me(c, "cg_" + "x" * 40) == 401
    with c.uow() as s:
        token_revoke(s, token_id=token_id, actor="t", now=FIXED_NOW)
    assert _me(c, token) == 401


def test_an_expired_token_is_refused(served) -> None:
    c, _token_id, token = served
    later = dataclasses.replace(c, clock=lambda: FIXED_NOW + dt.timedelta(days=1, seconds=1))
    assert _me(c, token) == 200
    assert _me(later, token) == 401
