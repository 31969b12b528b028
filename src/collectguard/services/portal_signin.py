"""Borrower sign-in to the portal by a one-time code sent to the phone on record (DESIGN §8 ``/portal``).

The borrower types their phone number; if it is on record with a lender, a 6-digit code is issued
and sent to it. The answer is the same whether the number is on record or not, so the form does
not tell anyone whose number a lender holds. Typing the code back starts an ordinary web session
(an ``api_token`` row labelled ``web-session``, as ``services.accounts.session_start`` makes) for a
``borrower`` user linked to the borrower, created on the first sign-in.

The code, without a new table: one ``api_token`` row per phone number, found through its unique
``token_hash`` = HMAC(secret key, phone look-up hash). The row's ``role`` is ``portal-otp``, which
is not a role, so ``principal_from_token`` never accepts it as a bearer token, and its ``token_hash``
is an HMAC that no bearer token's SHA-256 can equal. ``label`` carries the state:
``portal-otp:<day>:<codes issued that day>:<wrong tries>:<HMAC of the code>``. A new code replaces
the previous one; the code expires after ``CODE_TTL``, works once (revoked when used, by a
conditional UPDATE, so two simultaneous uses cannot both win), dies after ``MAX_TRIES`` wrong
tries, and a number gets at most ``MAX_CODES_PER_DAY`` codes a day: a guesser gets at most
``MAX_TRIES * MAX_CODES_PER_DAY`` guesses a day at a million codes. The web edge adds per-client
and per-number rate limits on top (``api.ratelimit``).

Delivery: in ``development`` the code is printed to the server log (and nowhere else); otherwise
it goes to the outbox as an ``sms`` message whose text is encrypted with the PII key
(``body_enc``), for the SMS consumer to decrypt and send (no SMS gateway ships yet: see
docs/portal.md). It is never logged outside development.

One number, several lenders: a number may be on record with more than one lender (tenant). One
code is sent; once it is typed back the borrower chooses which lender's records to open, and the
session covers that one lender only (tenant isolation stays per session). Switching lender means
signing in again.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from collectguard.adapters.db.models import ApiToken, Borrower, Tenant, User
from collectguard.adapters.logging import get_logger
from collectguard.bootstrap import Container
from collectguard.domain import validation as v
from collectguard.errors import BadInput, Forbidden, Unauthenticated
from collectguard.services.accounts import SESSION_LABEL, principal_from_token, token_generate, token_hash
from collectguard.services.audit import audit_append
from collectguard.services.authz import Principal
from collectguard.services.outbox import outbox_enqueue

__all__ = ["CODE_TTL", "MAX_CODES_PER_DAY", "MAX_TRIES", "OTP_ROLE", "PORTAL_SESSION_TTL", "PortalMatch",
           "portal_code_request", "portal_code_verify", "portal_phone_key", "portal_session_start"]

OTP_ROLE = "portal-otp"  # deliberately not in authz.ROLES
OTP_PREFIX = "portal-otp"
CODE_TTL = dt.timedelta(minutes=5)
MAX_TRIES = 5
MAX_CODES_PER_DAY = 10
PORTAL_SESSION_TTL = dt.timedelta(hours=2)  # shorter than staff sessions: phones get lost and shared
UNUSABLE_PASSWORD = "!portal-otp"  # noqa: S105 - not an argon2 hash: password sign-in can never match it
_INVALID = "wrong or expired code"
log = get_logger("collectguard.portal")


@dataclass(frozen=True, slots=True)
class PortalMatch:
    """A borrower record the verified phone number opens: which lender, which borrower."""

    tenant_id: int
    tenant_code: str
    lender_name: str
    borrower_id: int


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def _mac(secret: str, purpose: str, value: str) -> str:
    return hmac.new(secret.encode(), f"{purpose}|{value}".encode(), hashlib.sha256).hexdigest()


def _lookup_keys(c: Container, phone: str) -> list[str]:
    """Look-up hashes of the number as typed: nationally as a CN or a US number, or with its +country code."""
    phone = phone.strip()
    regions = ("CN",) if phone.startswith("+") else ("CN", "US")  # with "+", the region is not used
    keys: list[str] = []
    for region in regions:
        try:
            key = c.cipher.lookup_hash(v.phone_e164(phone, jurisdiction=region))
        except v.InvalidValue:
            continue
        if key not in keys:
            keys.append(key)
    if not keys:
        raise BadInput("not a valid phone number", field="phone")
    return keys


def portal_phone_key(c: Container, phone: str) -> str:
    """A stable, non-reversible key for rate-limiting a number (HMAC with the secret key; bad input raises)."""
    return _mac(c.settings.secret_key, "portal-rate", _lookup_keys(c, phone)[0])


def _matches(s: Session, keys: list[str]) -> tuple[str | None, list[PortalMatch]]:
    """The first look-up hash that is on record, and the borrowers (of lenders) holding it."""
    rows = s.execute(select(Borrower.id, Borrower.phone_hmac, Tenant.id, Tenant.code, Tenant.name)
                     .join(Tenant, Tenant.id == Borrower.tenant_id)
                     .where(Borrower.phone_hmac.in_(keys), Tenant.kind == "lender")
                     .order_by(Tenant.id, Borrower.id)).all()
    for key in keys:
        found = [PortalMatch(tenant_id=t_id, tenant_code=code, lender_name=name, borrower_id=b_id)
                 for b_id, b_key, t_id, code, name in rows if b_key == key]
        if found:
            return key, found
    return None, []


def _row_hash(c: Container, key: str) -> str:
    return _mac(c.settings.secret_key, "portal-otp-row", key)


def _code_mac(c: Container, key: str, day: str, issued: int, code: str) -> str:
    # Bound to the number and to the issue, so a code's MAC is useless for another number or issue.
    return _mac(c.settings.secret_key, "portal-otp-code", f"{key}|{day}|{issued}|{code}")


def _parse_label(label: str) -> tuple[str, int, int, str] | None:
    parts = label.split(":")
    if len(parts) != 5 or parts[0] != OTP_PREFIX or not (parts[2].isdigit() and parts[3].isdigit()):
        return None
    return parts[1], int(parts[2]), int(parts[3]), parts[4]


def portal_code_request(c: Container, *, phone: str, lang: str = "zh-CN") -> None:
    """Issue a code for ``phone`` when it is on record (see the module docstring); answer nothing either way.

    ``BadInput`` only for a string that is not a phone number at all, which says nothing about records.
    """
    keys = _lookup_keys(c, phone)
    now = _utc(c.clock())
    day = now.strftime("%Y%m%d")
    with c.uow() as s:
        key, found = _matches(s, keys)
        if key is None:
            log.info("portal_code_requested", on_record=False)
            return
        row = s.scalar(select(ApiToken).where(ApiToken.token_hash == _row_hash(c, key)))
        state = _parse_label(row.label) if row is not None else None
        issued = state[1] + 1 if state is not None and state[0] == day else 1
        if issued > MAX_CODES_PER_DAY:
            log.warning("portal_code_refused", reason="daily_cap", tenant_id=found[0].tenant_id)
            return
        code = f"{secrets.randbelow(10**6):06d}"
        label = f"{OTP_PREFIX}:{day}:{issued}:0:{_code_mac(c, key, day, issued, code)}"
        if row is None:
            row = ApiToken(tenant_id=found[0].tenant_id, user_id=None, role=OTP_ROLE, token_hash=_row_hash(c, key),
                           label=label, created_at=now, expires_at=now + CODE_TTL)
            try:
                with s.begin_nested():
                    s.add(row)
            except IntegrityError:  # a simultaneous request for the same number issued the first code
                log.info("portal_code_refused", reason="concurrent", tenant_id=found[0].tenant_id)
                return
        else:  # the new code replaces the previous one, used or not
            row.label, row.created_at, row.expires_at, row.revoked_at = label, now, now + CODE_TTL, None
            s.flush()
        for m in found:
            audit_append(s, tenant_id=m.tenant_id, actor="portal", action="portal.code_issue",
                         subject=f"borrower:{m.borrower_id}", now=now,
                         payload={"borrower_id": m.borrower_id, "token_id": row.id, "issued_today": issued})
        _deliver(c, s, found[0], row_id=row.id, code=code, lang=lang, now=now)


def _deliver(c: Container, s: Session, m: PortalMatch, *, row_id: int, code: str, lang: str,
             now: dt.datetime) -> None:
    minutes = int(CODE_TTL.total_seconds() // 60)
    text = (f"Your collectguard sign-in code is {code}. It expires in {minutes} minutes. Never share it."
            if lang == "en" else f"您的登录验证码是 {code}，{minutes} 分钟内有效。请勿告诉任何人，包括自称客服的人。")
    if c.settings.environment == "development":
        # Development only: there is no SMS gateway on a developer's machine, so the log is the phone.
        # A warning, so that it shows whatever log level the developer runs with.
        log.warning("portal_code_dev", code=code, token_id=row_id, note="development mode only")
        return
    body = base64.b64encode(c.cipher.encrypt(text)).decode("ascii")
    outbox_enqueue(s, kind="sms", tenant_id=m.tenant_id, subject=f"portal_otp:{row_id}", now=now,
                   payload={"purpose": "portal_otp", "tenant_id": m.tenant_id, "borrower_id": m.borrower_id,
                            "body_enc": body})


def portal_code_verify(c: Container, *, phone: str, code: str) -> list[PortalMatch]:
    """Check a code typed back; returns the borrower records it opens (one per lender), and uses the code up.

    ``Unauthenticated`` with one message for a wrong, expired, used or unknown code and an unknown number.
    """
    try:
        keys = _lookup_keys(c, phone)
    except BadInput:
        raise Unauthenticated(_INVALID) from None
    code = code.strip()
    now = _utc(c.clock())
    with c.uow() as s:
        key, found = _matches(s, keys)
        row = s.scalar(select(ApiToken).where(ApiToken.token_hash == _row_hash(c, key))) if key else None
        state = _parse_label(row.label) if row is not None and row.role == OTP_ROLE else None
        if row is None or state is None or row.revoked_at is not None or row.expires_at is None \
                or _utc(row.expires_at) <= now:
            raise Unauthenticated(_INVALID)
        assert key is not None
        day, issued, tries, mac = state
        good = len(code) == 6 and code.isdigit() and hmac.compare_digest(mac, _code_mac(c, key, day, issued, code))
        if not good:
            tries += 1
            row.label = f"{OTP_PREFIX}:{day}:{issued}:{tries}:{mac}"
            if tries >= MAX_TRIES:  # this code is dead; a new one must be requested
                row.revoked_at = now
            s.flush()
            for m in found:
                audit_append(s, tenant_id=m.tenant_id, actor="portal", action="portal.code_wrong",
                             subject=f"borrower:{m.borrower_id}", now=now,
                             payload={"borrower_id": m.borrower_id, "token_id": row.id, "tries": tries})
            # Commit the count even though the caller gets an error: wrong tries must stick.
            failed = True
        else:
            # Single use: only one of two simultaneous requests with the right code flips revoked_at.
            used = s.execute(update(ApiToken).where(ApiToken.id == row.id, ApiToken.revoked_at.is_(None))
                             .values(revoked_at=now))
            if getattr(used, "rowcount", 0) != 1:
                raise Unauthenticated(_INVALID)
            failed = False
    if failed:
        raise Unauthenticated(_INVALID)
    return found


def _user_for(s: Session, m: PortalMatch, now: dt.datetime) -> User:
    users = list(s.scalars(select(User).where(User.tenant_id == m.tenant_id, User.borrower_id == m.borrower_id,
                                              User.role == "borrower").order_by(User.id)))
    if users:
        active = [u for u in users if u.active]
        if not active:
            raise Forbidden("this portal account is disabled; please contact the lender")
        return active[0]
    b = s.get(Borrower, m.borrower_id)
    assert b is not None
    name = f"portal:{m.tenant_code}:{b.ext_id}"[:120]
    if s.scalar(select(User.id).where(User.username == name)) is not None:
        name = f"portal:{m.tenant_id}:{m.borrower_id}"
    user = User(tenant_id=m.tenant_id, username=name, display_name="", role="borrower",
                password_hash=UNUSABLE_PASSWORD, borrower_id=m.borrower_id, active=True, created_at=now)
    s.add(user)
    s.flush()
    # As accounts.user_create: a borrower is named by ids only in the audit.
    audit_append(s, tenant_id=m.tenant_id, actor="portal", action="user.create", subject=f"user:{user.id}",
                 now=now, payload={"user_id": user.id, "role": "borrower", "active": True,
                                   "borrower_id": m.borrower_id, "via": "portal-otp"})
    return user


def portal_session_start(c: Container, *, borrower_id: int) -> tuple[Principal, str]:
    """A web session for a borrower whose code was just verified: the principal and the session token.

    The caller vouches for the verification (``portal_code_verify`` returned this borrower).
    """
    now = _utc(c.clock())
    with c.uow() as s:
        found = s.execute(select(Borrower, Tenant).join(Tenant, Tenant.id == Borrower.tenant_id)
                          .where(Borrower.id == borrower_id, Tenant.kind == "lender")).first()
        if found is None:
            raise Unauthenticated(_INVALID)
        b, t = found
        match = PortalMatch(tenant_id=t.id, tenant_code=t.code, lender_name=t.name, borrower_id=b.id)
        user = _user_for(s, match, now)
        raw = token_generate()
        row = ApiToken(tenant_id=match.tenant_id, user_id=user.id, role="borrower", token_hash=token_hash(raw),
                       label=SESSION_LABEL, created_at=now, expires_at=now + PORTAL_SESSION_TTL)
        s.add(row)
        s.flush()
        payload: dict[str, Any] = {"token_id": row.id, "role": "borrower", "user_id": user.id,
                                   "label": SESSION_LABEL, "expires_at": row.expires_at.isoformat()
                                   if row.expires_at else None, "borrower_id": match.borrower_id,
                                   "method": "portal-otp"}
        audit_append(s, tenant_id=match.tenant_id, actor=f"user:{user.id}", action="session.start",
                     subject=f"token:{row.id}", payload=payload, now=now)
        principal = principal_from_token(s, token=raw, now=now)
    assert principal is not None
    return principal, raw
