"""Cost of credit: each loan's true APR and its legal cap; the loans above it with what may be claimed.

Thin: the services (``services.costs``) check ``loan.read`` and the caller's scope (tenant, agency
or the borrower's own loans; 404 for anything else).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from collectguard.api.deps import ContainerDep, PrincipalDep
from collectguard.services.costs import loan_cost, loans_over_cap

router = APIRouter(tags=["cost of credit"])
MAX_ID = 2**63 - 1
Id = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/loans/{loan_id}/cost", summary="A loan's APR and cost-cap verdict with the claimable interest")
def cost_of_loan(loan_id: Id, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    """`status` is `valid`, `over_cap` or `illegal` (`unknown` when a fact such as the LPR is missing),
    with citations, the cap, and the charged / claimable / excess amounts over the contractual schedule."""
    return loan_cost(c, principal=p, loan_id=loan_id)


@router.get("/costs/over-cap", summary="Loans whose true APR is above their legal cap, by id")
def over_cap(c: ContainerDep, p: PrincipalDep, limit: int = Query(100, ge=1, le=1000),
             after_id: int = Query(0, ge=0, le=MAX_ID)) -> dict[str, Any]:
    """Private and unlicensed lending above 4 x the LPR at signing, unlicensed above 36% (illegal);
    page on with `after_id=next_after_id`."""
    return loans_over_cap(c, principal=p, limit=limit, after_id=after_id)
