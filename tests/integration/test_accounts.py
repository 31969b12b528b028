"""Accounts on the real schema, SQLite and PostgreSQL: users, tokens, sessions, audit, tenant isolation."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from collectguard.adapters.db.models import ApiToken, AuditRecord, Borrower, Case, Contact, Loan, Tenant, User
from collectguard.errors import BadInput, Conflict, NotFound, Unauthenticated
from collectguard.services import accounts
from collectguard.services.accounts import (
    password_verify,
    principal_from_token,
    session_end,
    session_start,
    tenant_create,
    token_create,
    token_revoke,
    user_create,
    user_disable,
)
from collectguard.services.authz import Principal, ensure_visible, scope_cases, scope_contacts, scope_tenant

NOW = dt.datetime(2026, 4, 7, 2, 0, tzinfo=dt.UTC)
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch):
    # The production parameters cost ~0.2 s a hash; the tests check behaviour, not cost.
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=256, parallelism=1))
    monkeypatch.setattr(accounts, "_dummy_hash", None)


def mkuser(s, username="alice", role="collector", tenant="acme", **kw):
    return user_create(s, tenant_code=tenant, username=username, role=role, password=PASSWORD,
                       create_tenant=True, actor="test", now=NOW, **kw)


def audit_actions(s) -> list[str]:
    return list(s.scalars(select(AuditRecord.action).order_by(AuditRecord.id)))


# ---- users ------------------------------------------------------------------------------------------

def test_user_create_stores_an_argon2_hash_and_audits(container):
    with container.uow() as s:
        user = mkuser(s)
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash
        assert password_verify(user.password_hash, PASSWORD)
        assert not password_verify(user.password_hash, PASSWORD + "!")
        assert not password_verify("not-a-hash", PASSWORD)
        assert audit_actions(s) == ["tenant.create", "user.create"]
        record = s.scalars(select(AuditRecord).where(AuditRecord.action == "user.create")).one()
        assert PASSWORD not in record.payload and "alice" in record.payload


def test_unknown_tenant_is_refused_without_create_tenant(container):
    with container.uow() as s, pytest.raises(NotFound, match="--create-tenant"):
        user_create(s, tenant_code="nope", username="bob1", role="admin", password=PASSWORD, actor="t",
                    now=NOW)


@pytest.mark.parametrize(("password", "why"), [("short", "at least 10"), ("aaaaaaaaaaaa", "too easy"),
                                               ("xx-alice-xx-1", "too easy")])
def test_weak_passwords_are_refused(container, password, why):
    with container.uow() as s, pytest.raises(BadInput, match=why) as exc:
        user_create(s, tenant_code="acme", username="alice", role="admin", password=password,
                    create_tenant=True, actor="t", now=NOW)
    assert exc.value.field == "password"


def test_role_and_username_validation(container):
    with container.uow() as s:
        with pytest.raises(BadInput, match="unknown role"):
            mkuser(s, role="root")
        with pytest.raises(BadInput, match="username"):
            mkuser(s, username="a b")
        mkuser(s)
        with pytest.raises(Conflict):
            mkuser(s)


@pytest.mark.parametrize("username", ["13800138000", "+8613800138000", "138-0013-8000", "110101199001011234",
                                      "11010119900101123X"])
def test_a_phone_or_id_number_is_never_a_username(container, username):
    with container.uow() as s, pytest.raises(BadInput, match="phone or ID number") as exc:
        mkuser(s, username=username)
    assert exc.value.field == "username"


def test_usernames_with_some_digits_are_fine(container):
    with container.uow() as s:
        assert mkuser(s, username="li.138").username == "li.138"
        assert mkuser(s, username="agent007x").username == "agent007x"


def test_roles_fit_their_tenant_kind(container):
    with container.uow() as s:
        tenant_create(s, code="agency-1", kind="agency", actor="t", now=NOW)
        with pytest.raises(BadInput, match="agency"):
            mkuser(s, username="ac1", role="agency_collector", tenant="acme")
        with pytest.raises(BadInput, match="lender"):
            mkuser(s, username="coll1", role="collector", tenant="agency-1")
        with pytest.raises(BadInput, match="--borrower"):
            mkuser(s, username="borr1", role="borrower")
        assert mkuser(s, username="ac2", role="agency_collector", tenant="agency-1").id


def test_user_disable_revokes_tokens_and_audits(container):
    with container.uow() as s:
        mkuser(s)
        _row, raw = token_create(s, tenant_code="acme", role="collector", username="alice", actor="t",
                                 now=NOW)
        user_disable(s, username="alice", actor="t", now=NOW)
        assert principal_from_token(s, token=raw, now=NOW) is None
        assert audit_actions(s)[-1] == "user.disable"


# ---- tokens -----------------------------------------------------------------------------------------

def test_token_is_stored_only_as_its_sha256(container):
    with container.uow() as s:
        mkuser(s)
        row, raw = token_create(s, tenant_code="acme", role="collector", username="alice", actor="t", now=NOW)
        assert len(raw) == 43 and row.token_hash == hashlib.sha256(raw.encode()).hexdigest()
        assert not s.scalars(select(ApiToken).where(ApiToken.token_hash == raw)).first()
        principal = principal_from_token(s, token=raw, now=NOW)
        assert principal == Principal(tenant_id=row.tenant_id, tenant_code="acme", role="collector",
                                      user_id=row.user_id, token_id=row.id, username="alice")
        assert raw not in "".join(s.scalars(select(AuditRecord.payload)))


def test_token_expiry_and_revocation(container):
    with container.uow() as s:
        tenant_create(s, code="acme", actor="t", now=NOW)
        row, raw = token_create(s, tenant_code="acme", role="auditor", expires_days=1, actor="t", now=NOW)
        assert principal_from_token(s, token=raw, now=NOW + dt.timedelta(hours=23)) is not None
        assert principal_from_token(s, token=raw, now=NOW + dt.timedelta(days=1)) is None
        token_revoke(s, token_id=row.id, actor="t", now=NOW)
        token_revoke(s, token_id=row.id, actor="t", now=NOW + dt.timedelta(hours=1))  # idempotent
        assert principal_from_token(s, token=raw, now=NOW) is None
        assert audit_actions(s).count("token.revoke") == 1
        assert principal_from_token(s, token="made-up", now=NOW) is None
        assert principal_from_token(s, token="", now=NOW) is None


def test_token_create_validation(container):
    with container.uow() as s:
        mkuser(s)
        with pytest.raises(BadInput, match="has role"):
            token_create(s, tenant_code="acme", role="admin", username="alice", actor="t", now=NOW)
        with pytest.raises(BadInput, match="borrower token needs"):
            token_create(s, tenant_code="acme", role="borrower", actor="t", now=NOW)
        with pytest.raises(BadInput, match="expires"):
            token_create(s, tenant_code="acme", role="auditor", expires_days=0, actor="t", now=NOW)
        with pytest.raises(NotFound):
            token_create(s, tenant_code="ghost", role="auditor", actor="t", now=NOW)
        with pytest.raises(BadInput, match="unknown role"):
            token_create(s, tenant_code="acme", role="god", actor="t", now=NOW)


def test_agency_tokens_carry_the_agency(container):
    with container.uow() as s:
        tenant_create(s, code="agency-1", kind="agency", actor="t", now=NOW)
        _row, raw = token_create(s, tenant_code="agency-1", role="agency_collector", actor="t", now=NOW)
        principal = principal_from_token(s, token=raw, now=NOW)
        assert principal is not None and principal.agency_tenant_id == principal.tenant_id


# ---- sessions ---------------------------------------------------------------------------------------

def test_session_start_checks_the_password_and_end_revokes(container):
    with container.uow() as s:
        mkuser(s)
        for username, password in (("alice", "wrong password!"), ("nobody", PASSWORD)):
            with pytest.raises(Unauthenticated, match="wrong username or password"):
                session_start(s, username=username, password=password, now=NOW)
        principal, raw = session_start(s, username="alice", password=PASSWORD, now=NOW)
        assert principal.username == "alice" and principal.role == "collector"
        assert principal_from_token(s, token=raw, now=NOW + dt.timedelta(hours=13)) is None  # 12 h sessions
        session_end(s, token=raw, now=NOW)
        assert principal_from_token(s, token=raw, now=NOW) is None
        assert audit_actions(s)[-2:] == ["session.start", "session.end"]


def test_sign_in_upgrades_an_outdated_hash(container, monkeypatch):
    with container.uow() as s:
        user = mkuser(s)
        old = user.password_hash
        monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=2, memory_cost=512, parallelism=1))
        session_start(s, username="alice", password=PASSWORD, now=NOW)
        assert user.password_hash != old and "t=2" in user.password_hash


# ---- tenant isolation on real queries ---------------------------------------------------------------

@pytest.fixture
def portfolio(container):
    """Two lenders and one agency; lender A has borrowers 1 (case outsourced) and 2 (in-house)."""
    c = container
    ids: dict[str, int] = {}
    with c.uow() as s:
        a = tenant_create(s, code="lender-a", actor="t", now=NOW)
        b = tenant_create(s, code="lender-b", actor="t", now=NOW)
        ag = tenant_create(s, code="agency-x", kind="agency", actor="t", now=NOW)
        for name, tenant, agency, status in (("a1", a, ag.id, "open"), ("a2", a, None, "open"),
                                             ("b1", b, None, "open"), ("a3", a, ag.id, "closed")):
            bo = Borrower(tenant_id=tenant.id, ext_id=name, name_enc=c.cipher.encrypt("张三"),
                          phone_enc=c.cipher.encrypt("13800000000"), phone_hmac=name, jurisdiction="CN",
                          timezone="Asia/Shanghai", language="zh-CN", created_at=NOW)
            s.add(bo)
            s.flush()
            loan = Loan(tenant_id=tenant.id, ext_id=name, borrower_id=bo.id,
                        lender_type="licensed_institution", principal=Decimal(1000), currency="CNY",
                        annual_rate=Decimal(18),
                        disbursed_on=dt.date(2026, 1, 1), created_at=NOW)
            s.add(loan)
            s.flush()
            s.add(Case(tenant_id=tenant.id, loan_id=loan.id, borrower_id=bo.id, status=status, bucket="M1",
                       dpd=10, opened_on=dt.date(2026, 4, 1), agency_tenant_id=agency))
            for source in ("borrower_designated", "contact_list"):
                s.add(Contact(tenant_id=tenant.id, borrower_id=bo.id, ext_id=f"{name}-{source}",
                              name_enc=b"x", phone_enc=b"x", phone_hmac=f"{name}{source}",
                              relation="relative", source=source, created_at=NOW))
            ids[name] = bo.id
        ids.update(a=a.id, b=b.id, ag=ag.id)
    return ids


def _who(ids, role, tenant="a", borrower=None):
    tid = ids[tenant]
    return Principal(tenant_id=tid, tenant_code=tenant, role=role, borrower_id=borrower,
                     agency_tenant_id=tid if tenant == "ag" else None)


def _case_borrowers(s, principal):
    return sorted(s.scalars(scope_cases(select(Case.borrower_id), principal)))


def test_scope_cases_on_both_backends(container, portfolio):
    ids = portfolio
    with container.uow(write=False) as s:
        assert _case_borrowers(s, _who(ids, "collector")) == sorted([ids["a1"], ids["a2"], ids["a3"]])
        assert _case_borrowers(s, _who(ids, "collector", "b")) == [ids["b1"]]
        assert _case_borrowers(s, _who(ids, "agency_collector", "ag")) == sorted([ids["a1"], ids["a3"]])
        assert _case_borrowers(s, _who(ids, "borrower", borrower=ids["a2"])) == [ids["a2"]]
        assert _case_borrowers(s, _who(ids, "borrower")) == []


def test_agency_sees_borrowers_and_loans_only_while_a_case_is_open(container, portfolio):
    ids = portfolio
    agency = _who(ids, "agency_collector", "ag")
    with container.uow(write=False) as s:
        assert list(s.scalars(scope_tenant(select(Borrower.id), Borrower, agency))) == [ids["a1"]]
        loans = list(s.scalars(scope_tenant(select(Loan.borrower_id), Loan, agency)))
        assert loans == [ids["a1"]]
        assert ensure_visible(s.get(Borrower, ids["a1"]), agency, session=s)
        for name in ("a2", "a3", "b1"):  # in-house, closed, another lender
            with pytest.raises(NotFound):
                ensure_visible(s.get(Borrower, ids[name]), agency, session=s)


def test_collectors_never_get_contact_list_rows(container, portfolio):
    ids = portfolio
    with container.uow(write=False) as s:
        sources = set(s.scalars(scope_contacts(select(Contact.source), _who(ids, "collector"))))
        assert sources == {"borrower_designated"}
        sources = set(s.scalars(scope_contacts(select(Contact.source), _who(ids, "compliance_officer"))))
        assert sources == {"borrower_designated", "contact_list"}
        tenants = set(s.scalars(scope_contacts(select(Contact.tenant_id), _who(ids, "compliance_officer"))))
        assert tenants == {ids["a"]}


def test_foreign_tenant_rows_are_not_found(container, portfolio):
    ids = portfolio
    with container.uow(write=False) as s:
        foreign = s.scalars(select(Case).where(Case.tenant_id == ids["b"])).one()
        with pytest.raises(NotFound):
            ensure_visible(foreign, _who(ids, "admin"))
        assert s.scalar(select(Tenant.kind).where(Tenant.id == ids["ag"])) == "agency"
        assert s.scalar(select(User.id)) is None  # the portfolio needs no users
