"""Tenants: the lenders and collection agencies whose data collectguard keeps apart."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from collectguard.adapters.db.models import Tenant
from collectguard.errors import BadInput

TENANT_KINDS = ("lender", "agency")


def tenant_ensure(session: Session, *, code: str, name: str | None = None, kind: str = "lender",
                  licensed: bool = True, now: dt.datetime) -> Tenant:
    """Return the tenant with ``code``, creating it (``name`` defaults to the code) when missing.

    An existing tenant is returned as it is: ``name``, ``kind`` and ``licensed`` only apply to a new
    one, so that an import naming a tenant can never silently rename or re-license it.
    """
    code = code.strip()
    if not code or len(code) > 64:
        raise BadInput("a tenant code is 1–64 characters", field="tenant")
    if kind not in TENANT_KINDS:
        raise BadInput(f"tenant kind must be one of {', '.join(TENANT_KINDS)}", field="kind")
    tenant = session.scalar(select(Tenant).where(Tenant.code == code))
    if tenant is not None:
        return tenant
    try:
        # A savepoint, so that losing a race with a concurrent creator leaves our transaction usable.
        with session.begin_nested():
            tenant = Tenant(code=code, name=name or code, kind=kind, licensed=licensed, created_at=now)
            session.add(tenant)
    except IntegrityError:
        tenant = session.scalars(select(Tenant).where(Tenant.code == code)).one()
    return tenant
