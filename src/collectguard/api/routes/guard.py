"""POST /api/v1/guard/check — the guard's answer for one planned contact (DESIGN §8)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body

from collectguard.api.deps import ContainerDep, PrincipalDep
from collectguard.domain.event import CollectionEvent
from collectguard.rules import Guard
from collectguard.services.authz import require
from collectguard.services.guard import guard_check

router = APIRouter(tags=["guard"])


@router.post("/guard/check", summary="Check a planned contact (dry run)")
def guard_check_route(
    c: ContainerDep,
    p: PrincipalDep,
    event: CollectionEvent = Body(..., description="A collection event (DESIGN §5); see GET /guard/schema"),
) -> dict[str, Any]:
    """Returns the decision (`allow`/`deny` with violations, warnings and lint). Nothing is reserved;
    the decision is recorded in the audit trail. Unknown fields or wrong types → 422 naming the field."""
    require(p, "guard.check")
    actor = f"{p.role}:{p.user_id or 'token'}"
    return guard_check(c, event=event, tenant_id=p.tenant_id, actor=actor).model_dump(mode="json")


@router.get("/guard/schema", summary="JSON Schema of the collection event")
def guard_schema(p: PrincipalDep) -> dict[str, Any]:
    return CollectionEvent.model_json_schema()


@router.get("/guard/packs", summary="The rule packs in force: rules, citations, thresholds")
def guard_packs(p: PrincipalDep) -> dict[str, Any]:
    guard = Guard.default()
    return {code: pack.describe() if hasattr(pack, "describe") else {"jurisdiction": code}
            for code, pack in guard.packs.items()}
