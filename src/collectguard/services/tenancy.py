"""Tenants: the lenders and collection agencies whose data collectguard keeps apart.

One function creates tenants, whoever asks: ``user create --create-tenant`` (``accounts.tenant_create``,
which must not find one), an import or the demo naming a tenant (``tenant_ensure``, which returns an
existing one as it is). Either way a new tenant has a valid code and kind and is an audit record
(``tenant.create``) in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from collectguard.adapters.db.models import Tenant
from collectguard.errors import BadInput, Conflict, NotFound
from collectguard.services.audit import audit_append

TENANT_KINDS = ("lender", "agency")
TENANT_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def tenant_get(session: Session, code: str) -> Tenant:
    """The tenant with ``code``, or ``NotFound``."""
    tenant = session.scalar(select(Tenant).where(Tenant.code == code))
    if tenant is None:
        raise NotFound(f"unknown tenant {code!r}", detail={"field": "tenant"})
    return tenant


def tenant_ensure(session: Session, *, code: str, name: str | None = None, kind: str = "lender",
                  licensed: bool = True, actor: str = "system", now: dt.datetime,
                  exist_ok: bool = True) -> Tenant:
    """Return the tenant with ``code``, creating it (``name`` defaults to the code) when missing.

    An existing tenant is returned as it is: ``name``, ``kind`` and ``licensed`` only apply to a new
    one, so that an import naming a tenant can never silently rename or re-license it. With
    ``exist_ok=False`` an existing tenant is a ``Conflict`` instead. A new tenant's code is 1-64
    characters of a-z, 0-9, '-' and '_' (it appears in URLs, file names and audit chains).
    """
    code = code.strip()
    if kind not in TENANT_KINDS:
        raise BadInput(f"unknown tenant kind {kind!r}; expected lender or agency", field="tenant_kind")
    tenant = session.scalar(select(Tenant).where(Tenant.code == code))
    if tenant is not None:
        if not exist_ok:
            raise Conflict(f"tenant {code!r} already exists")
        return tenant
    if not TENANT_CODE.match(code):
        raise BadInput("a tenant code is 1-64 characters of a-z, 0-9, '-' and '_'", field="tenant")
    try:
        # A savepoint, so that losing a race with a concurrent creator leaves our transaction usable.
        with session.begin_nested():
            tenant = Tenant(code=code, name=name or code, kind=kind, licensed=licensed, created_at=_utc(now))
            session.add(tenant)
    except IntegrityError:
        if not exist_ok:
            raise Conflict(f"tenant {code!r} already exists") from None
        return session.scalars(select(Tenant).where(Tenant.code == code)).one()
    audit_append(session, tenant_id=tenant.id, actor=actor, action="tenant.create", subject=f"tenant:{tenant.id}",
                 payload={"code": code, "kind": kind, "licensed": licensed}, now=now)
    return tenant
