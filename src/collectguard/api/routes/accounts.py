"""Account endpoints: who am I."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from collectguard.api.deps import PrincipalDep

router = APIRouter(tags=["accounts"])


class Me(BaseModel):
    """The caller as the API sees it."""

    tenant: str
    tenant_id: int
    role: str
    user_id: int | None
    username: str | None
    borrower_id: int | None
    agency_tenant_id: int | None
    token_id: int | None
    permissions: list[str]


@router.get("/me", response_model=Me)
def me(principal: PrincipalDep) -> Me:
    """The authenticated caller: tenant, role and the permissions the role holds."""
    return Me(tenant=principal.tenant_code, tenant_id=principal.tenant_id, role=principal.role,
              user_id=principal.user_id, username=principal.username, borrower_id=principal.borrower_id,
              agency_tenant_id=principal.agency_tenant_id, token_id=principal.token_id,
              permissions=sorted(principal.permissions))
