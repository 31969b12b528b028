"""Contact attempts (DESIGN §8): reserve a contact on stored facts, record its outcome, list them.

Thin: parse (unknown fields refused, 422 naming the field), call one service, render. A denied
contact answers 403 problem+json carrying the decision (``errors.Denied``); anything the caller
may not see answers 404.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from collectguard.api.deps import ContainerDep, PrincipalDep
from collectguard.domain.event import Channel, Conduct, Disclosure, Purpose, Role
from collectguard.services.attempts import (
    contact_attempt_outcome,
    contact_attempt_read,
    contact_attempt_request,
    contact_attempts_of_case,
)

router = APIRouter(tags=["contact attempts"])
_FORBID = ConfigDict(extra="forbid")
MAX_ID = 2**63 - 1  # a larger id cannot exist; refused as bad input rather than overflowing the driver
Id = Annotated[int, Path(ge=1, le=MAX_ID)]


class RecipientRef(BaseModel):
    """Who is contacted: a stored contact by id, or a role needing none (``borrower``, ``public``)."""

    model_config = _FORBID
    contact_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    role: Role | None = None

    @model_validator(mode="after")
    def _one(self) -> RecipientRef:
        if (self.contact_id is None) == (self.role is None):
            raise ValueError("give exactly one of contact_id and role")
        return self


class AttemptIn(BaseModel):
    """A planned contact. Facts (history, consents, debt) are read from the database, not sent."""

    model_config = _FORBID
    case_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    loan_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    channel: Channel
    recipient: RecipientRef
    time: AwareDatetime | None = Field(default=None, description="ISO-8601 with offset; default: now")
    message: str | None = Field(default=None, max_length=4000)
    purpose: Purpose = "collect"
    conduct: tuple[Conduct, ...] = ()
    discloses: tuple[Disclosure, ...] = ()
    visitors: int | None = Field(default=None, ge=0, le=100)
    opt_out_included: bool = False

    @model_validator(mode="after")
    def _one(self) -> AttemptIn:
        if (self.case_id is None) == (self.loan_id is None):
            raise ValueError("give exactly one of case_id and loan_id")
        return self


class OutcomeIn(BaseModel):
    model_config = _FORBID
    result: Literal["connected", "no_answer", "busy", "invalid_number", "ptp", "refused",
                    "no_contact_request", "dispute"]


@router.post("/contact-attempts", status_code=201, summary="Reserve a contact, judged on stored facts",
             responses={403: {"description": "denied by the guard (problem+json with the decision)"},
                        404: {"description": "unknown or foreign case, loan or contact"}})
def attempt_create(body: AttemptIn, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    """Allowed → 201 `{attempt_id, decision_id, decision}`; the attempt counts toward every cap at once."""
    return contact_attempt_request(
        c, principal=p, channel=body.channel, case_id=body.case_id, loan_id=body.loan_id,
        contact_id=body.recipient.contact_id, role=body.recipient.role, time=body.time, purpose=body.purpose,
        message=body.message, conduct=body.conduct, discloses=body.discloses, visitors=body.visitors,
        opt_out_included=body.opt_out_included)


@router.post("/contact-attempts/{attempt_id}/outcome", summary="Record what happened on an attempt")
def attempt_outcome(attempt_id: Id, body: OutcomeIn, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    """Once per attempt (409 after). A refusal or stop request takes effect for the next attempt;
    a dispute pauses the case."""
    return contact_attempt_outcome(c, principal=p, attempt_id=attempt_id, result=body.result)


@router.get("/contact-attempts/{attempt_id}", summary="One contact attempt")
def attempt_read(attempt_id: Id, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    """Without its message or the number reached; 404 unless the caller may see it."""
    return contact_attempt_read(c, principal=p, attempt_id=attempt_id)


@router.get("/cases/{case_id}/contact-attempts", summary="A case's contact attempts, oldest first")
def case_attempts(case_id: Id, c: ContainerDep, p: PrincipalDep, limit: int = Query(500, ge=1, le=1000),
                  offset: int = Query(0, ge=0)) -> list[dict[str, Any]]:
    """Every attempt on the case, by whoever made it (lender or agency)."""
    return contact_attempts_of_case(c, principal=p, case_id=case_id, limit=limit, offset=offset)
