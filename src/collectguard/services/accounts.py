"""Tenants, users, API tokens and web sessions (DESIGN §7 ``user create`` / ``token create``, §11).

- Passwords are hashed with argon2id (argon2-cffi defaults, RFC 9106); a hash made with older
  parameters is upgraded at the next successful sign-in.
- API tokens are 32 random bytes, URL-safe base64; only their SHA-256 is stored, so a database leak
  does not leak usable tokens. SHA-256 (not argon2) is right here: the token has 256 bits of entropy,
  nothing to brute-force, and every API request must look it up fast.
- A web session is an ``api_token`` row labelled ``web-session`` with a short expiry: signing out
  revokes it on the server, which a purely signed cookie could not do.
- Every account change (tenant, user, token, session) is an audit record in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from collectguard.adapters.db.models import ApiToken, Borrower, Tenant, User
from collectguard.errors import BadInput, Conflict, NotFound, Unauthenticated
from collectguard.services.audit import audit_append
from collectguard.services.authz import ROLES, Principal, role_validate
from collectguard.services.tenancy import tenant_ensure, tenant_get

MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_BYTES = 1024  # argon2 hashes any length; a cap keeps a sign-in from being a CPU sink
SESSION_LABEL = "web-session"
SESSION_TTL = dt.timedelta(hours=12)
DEFAULT_TOKEN_DAYS = 90

_USERNAME = re.compile(r"^[\w.@+-]{3,120}$")
# 7+ digits with optional +, - or . (a phone number), or an 18-character resident ID number.
_PII_LIKE = re.compile(r"^(\+?[\d.-]{7,}|\d{17}[\dXx])$")
# Roles bound to one tenant kind: agencies' staff collect as agency_collector, lenders' as collector,
# and a borrower is a customer of a lender.
_ROLE_TENANT_KIND = {"agency_collector": "agency", "collector": "lender", "borrower": "lender"}

_hasher = PasswordHasher()
_dummy_hash: str | None = None


def _utc(value: dt.datetime) -> dt.datetime:
    # SQLite returns naive datetimes; everything is stored in UTC, so naive means UTC.
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# ---- passwords and tokens -------------------------------------------------------------------------

def password_check(password: str, *, username: str = "") -> None:
    """Refuse a weak password (fewer than 10 characters, the username in it, one repeated character)."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise BadInput(f"the password must have at least {MIN_PASSWORD_CHARS} characters", field="password")
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise BadInput(f"the password must be at most {MAX_PASSWORD_BYTES} bytes", field="password")
    if len(set(password)) == 1 or (username and username.lower() in password.lower()):
        raise BadInput("the password is too easy to guess", field="password")


def password_hash(password: str) -> str:
    """The argon2id hash of ``password`` (PHC string, salt included)."""
    return _hasher.hash(password)


def password_verify(stored_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash``; a malformed hash never matches."""
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _burn_password_time(password: str) -> None:
    # Unknown usernames cost one argon2 verification too, so response time does not reveal them.
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(16))
    password_verify(_dummy_hash, password)


def token_generate() -> str:
    """A new bearer token: 32 random bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """SHA-256 hex of a bearer token: what ``api_token.token_hash`` stores."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# ---- tenants and users ----------------------------------------------------------------------------

def tenant_create(session: Session, *, code: str, kind: str = "lender", actor: str,
                  now: dt.datetime) -> Tenant:
    """Create a tenant (lender or agency); ``Conflict`` when the code is taken (``tenancy.tenant_ensure``)."""
    return tenant_ensure(session, code=code, kind=kind, actor=actor, now=now, exist_ok=False)


def user_create(session: Session, *, tenant_code: str, username: str, role: str, password: str,
                create_tenant: bool = False, tenant_kind: str = "lender", borrower_ext_id: str | None = None,
                display_name: str = "", actor: str, now: dt.datetime) -> User:
    """Create a user with an argon2 password hash; the tenant is created only with ``create_tenant``."""
    role_validate(role)
    if not _USERNAME.match(username):
        raise BadInput("a username is 3-120 letters, digits or . _ @ + -", field="username")
    if _PII_LIKE.match(username):
        # Usernames are stored and logged in clear (they name the actor of every audit record): a phone
        # or ID number there would be personal data outside the encrypted columns (PIPL 51, DESIGN §11).
        raise BadInput("a username must not be a phone or ID number (it is stored in clear)", field="username")
    password_check(password, username=username)
    tenant = session.scalar(select(Tenant).where(Tenant.code == tenant_code))
    if tenant is None:
        if not create_tenant:
            raise NotFound(f"unknown tenant {tenant_code!r} (pass --create-tenant to create it)",
                           detail={"field": "tenant"})
        tenant = tenant_create(session, code=tenant_code, kind=tenant_kind, actor=actor, now=now)
    _check_role_fits_tenant(role, tenant)
    borrower_id = _borrower_link(session, tenant, role, borrower_ext_id)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"username {username!r} is taken")
    user = User(tenant_id=tenant.id, username=username, display_name=display_name, role=role,
                password_hash=password_hash(password), borrower_id=borrower_id, active=True,
                created_at=_utc(now))
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent create won the unique username
        raise Conflict(f"username {username!r} is taken") from exc
    audit_append(session, tenant_id=tenant.id, actor=actor, action="user.create", subject=f"user:{user.id}",
                 payload=_user_payload(user), now=now)
    return user


def _check_role_fits_tenant(role: str, tenant: Tenant) -> None:
    kind = _ROLE_TENANT_KIND.get(role)
    if kind is not None and tenant.kind != kind:
        raise BadInput(f"role {role!r} needs a tenant of kind {kind}; {tenant.code!r} is {tenant.kind}",
                       field="role")


def _borrower_link(session: Session, tenant: Tenant, role: str, borrower_ext_id: str | None) -> int | None:
    if role != "borrower":
        if borrower_ext_id:
            raise BadInput("only a borrower user is linked to a borrower", field="borrower")
        return None
    if not borrower_ext_id:
        raise BadInput("a borrower user needs --borrower (the borrower's id in the tenant)", field="borrower")
    bid = session.scalar(select(Borrower.id).where(Borrower.tenant_id == tenant.id,
                                                   Borrower.ext_id == borrower_ext_id))
    if bid is None:
        raise NotFound(f"unknown borrower {borrower_ext_id!r} in tenant {tenant.code!r}",
                       detail={"field": "borrower"})
    return int(bid)


def _user_payload(user: User) -> dict[str, Any]:
    # A borrower's username may be a phone number: the audit names staff, and borrowers by id only.
    payload: dict[str, Any] = {"user_id": user.id, "role": user.role, "active": user.active}
    if user.role != "borrower":
        payload["username"] = user.username
    return payload


def user_disable(session: Session, *, username: str, actor: str, now: dt.datetime) -> User:
    """Deactivate a user and revoke every token and session they hold."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"unknown user {username!r}", detail={"field": "username"})
    user.active = False
    for tok in session.scalars(select(ApiToken).where(ApiToken.user_id == user.id,
                                                      ApiToken.revoked_at.is_(None))):
        tok.revoked_at = _utc(now)
    session.flush()
    audit_append(session, tenant_id=user.tenant_id, actor=actor, action="user.disable",
                 subject=f"user:{user.id}", payload=_user_payload(user), now=now)
    return user


# ---- API tokens -----------------------------------------------------------------------------------

def token_create(session: Session, *, tenant_code: str, role: str, username: str | None = None,
                 expires_days: int | None = DEFAULT_TOKEN_DAYS, label: str = "", actor: str,
                 now: dt.datetime) -> tuple[ApiToken, str]:
    """Issue a bearer token; returns the row and the token itself, which is never stored."""
    role_validate(role)
    if expires_days is not None and not 1 <= expires_days <= 3650:
        raise BadInput("--expires-days must be between 1 and 3650", field="expires_days")
    if label == SESSION_LABEL:
        raise BadInput(f"the label {SESSION_LABEL!r} is reserved for web sessions", field="label")
    tenant = tenant_get(session, tenant_code)
    _check_role_fits_tenant(role, tenant)
    user: User | None = None
    if username is not None:
        user = session.scalar(select(User).where(User.username == username, User.tenant_id == tenant.id))
        if user is None or not user.active:
            raise NotFound(f"no active user {username!r} in tenant {tenant_code!r}", detail={"field": "user"})
        if user.role != role:
            raise BadInput(f"user {username!r} has role {user.role!r}, not {role!r}", field="role")
    elif role == "borrower":
        raise BadInput("a borrower token needs --user (a borrower user)", field="user")
    expires = _utc(now) + dt.timedelta(days=expires_days) if expires_days is not None else None
    return _token_issue(session, tenant=tenant, role=role, user=user, label=label, expires_at=expires,
                        action="token.create", actor=actor, now=now)


def _token_issue(session: Session, *, tenant: Tenant, role: str, user: User | None, label: str,
                 expires_at: dt.datetime | None, action: str, actor: str,
                 now: dt.datetime) -> tuple[ApiToken, str]:
    raw = token_generate()
    row = ApiToken(tenant_id=tenant.id, user_id=user.id if user else None, role=role,
                   token_hash=token_hash(raw), label=label[:120], created_at=_utc(now), expires_at=expires_at)
    session.add(row)
    session.flush()
    audit_append(session, tenant_id=tenant.id, actor=actor, action=action, subject=f"token:{row.id}",
                 payload={"token_id": row.id, "role": role, "user_id": row.user_id, "label": row.label,
                          "expires_at": expires_at.isoformat() if expires_at else None}, now=now)
    return row, raw


def token_revoke(session: Session, *, token_id: int, actor: str, now: dt.datetime) -> ApiToken:
    """Revoke a token (idempotent: revoking twice keeps the first time)."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"unknown token id {token_id}", detail={"field": "token_id"})
    if row.revoked_at is None:
        row.revoked_at = _utc(now)
        session.flush()
        audit_append(session, tenant_id=row.tenant_id, actor=actor, action="token.revoke",
                     subject=f"token:{row.id}", payload={"token_id": row.id}, now=now)
    return row


def token_list(session: Session, *, tenant_code: str) -> list[ApiToken]:
    """The tenant's tokens, newest first (hashes only; the tokens themselves are unrecoverable)."""
    tenant = tenant_get(session, tenant_code)
    return list(session.scalars(select(ApiToken).where(ApiToken.tenant_id == tenant.id)
                                .order_by(ApiToken.id.desc())))


def principal_from_token(session: Session, *, token: str, now: dt.datetime) -> Principal | None:
    """The principal a bearer token stands for, or ``None`` when unknown, expired, revoked or disabled."""
    if not token or len(token) > 256:
        return None
    # One round trip: this runs on every API request.
    found = session.execute(
        select(ApiToken, Tenant, User)
        .join(Tenant, Tenant.id == ApiToken.tenant_id)
        .outerjoin(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == token_hash(token))
    ).first()
    if found is None:
        return None
    row, tenant, user = found
    if row.revoked_at is not None or row.role not in ROLES:
        return None
    if row.expires_at is not None and _utc(row.expires_at) <= _utc(now):
        return None
    if row.user_id is not None and (user is None or not user.active or user.tenant_id != row.tenant_id):
        return None
    return Principal(tenant_id=tenant.id, tenant_code=tenant.code, role=row.role,
                     user_id=user.id if user else None, borrower_id=user.borrower_id if user else None,
                     agency_tenant_id=tenant.id if tenant.kind == "agency" else None, token_id=row.id,
                     username=user.username if user else None)


# ---- web sessions ---------------------------------------------------------------------------------

def session_start(session: Session, *, username: str, password: str, now: dt.datetime,
                  ttl: dt.timedelta = SESSION_TTL) -> tuple[Principal, str]:
    """Check a username and password; returns the principal and a new session token.

    Raises ``Unauthenticated`` with the same message whether the user is unknown, disabled or the
    password wrong, so the answer does not reveal which usernames exist.
    """
    password = password[:MAX_PASSWORD_BYTES]
    user = session.scalar(select(User).where(User.username == username)) if username else None
    if user is None or not user.active:
        _burn_password_time(password)
        raise Unauthenticated("wrong username or password")
    if not password_verify(user.password_hash, password):
        raise Unauthenticated("wrong username or password")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = password_hash(password)
    tenant = session.get(Tenant, user.tenant_id)
    assert tenant is not None  # the foreign key guarantees it
    _row, raw = _token_issue(session, tenant=tenant, role=user.role, user=user, label=SESSION_LABEL,
                             expires_at=_utc(now) + ttl, action="session.start", actor=f"user:{user.id}",
                             now=now)
    principal = principal_from_token(session, token=raw, now=now)
    assert principal is not None
    return principal, raw


def session_end(session: Session, *, token: str, now: dt.datetime) -> None:
    """Revoke the session behind ``token`` (signing out); unknown or foreign tokens are ignored."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(token),
                                                ApiToken.label == SESSION_LABEL))
    if row is None or row.revoked_at is not None:
        return
    row.revoked_at = _utc(now)
    session.flush()
    audit_append(session, tenant_id=row.tenant_id, actor=f"user:{row.user_id}", action="session.end",
                 subject=f"token:{row.id}", payload={"token_id": row.id}, now=now)
