"""The consent ledger over HTTP: give, list and withdraw a borrower's consents (PIPL 14, 15).

Who: the borrower (their own consents, from the portal) and compliance officers (``consent.write``);
every role may read within its scope (``consent.read``). A withdrawal takes effect on the very next
guard decision; withdrawing ``contact_list`` also erases the stored contact-list contacts.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from collectguard.api.deps import ContainerDep, PrincipalDep
from collectguard.domain.validation import CONSENT_KINDS
from collectguard.services.consents import consent_give_as, consent_withdraw_as, consents_list_as

router = APIRouter(tags=["consents"])
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]

Kind = Literal[CONSENT_KINDS]  # type: ignore[valid-type]  # the importer's list: one source of truth


class ConsentIn(BaseModel):
    """A consent being given now. Evidence is kept as hashes only (clause text, device fingerprint)."""

    model_config = ConfigDict(extra="forbid")
    kind: Kind
    form: Literal["separate", "bundled"]
    channel: Literal["app", "web", "paper", "phone"] = "app"
    clause_code: str | None = Field(default=None, min_length=1, max_length=64,
                                    description="the clause shown (its SHA-256 becomes evidence)")
    clause_version: str | None = Field(default=None, min_length=1, max_length=32,
                                       description="default: the newest version of clause_code")
    page_version: str | None = Field(default=None, max_length=64)
    device_fingerprint: str | None = Field(default=None, max_length=512,
                                           description="hashed on arrival; never stored")
    hours: str | None = Field(default=None, description='agreed_hours only: "HH:MM-HH:MM"')


@router.post("/borrowers/{borrower_id}/consents", status_code=201, summary="Give a consent")
def consent_give(borrower_id: Id, body: ConsentIn, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    """409 when the same kind is already in force: withdraw it first (history is never overwritten)."""
    return consent_give_as(c, principal=p, borrower_id=borrower_id, **body.model_dump())


@router.get("/borrowers/{borrower_id}/consents", summary="A borrower's consent history")
def consents_list(borrower_id: Id, c: ContainerDep, p: PrincipalDep) -> list[dict[str, Any]]:
    """Given and withdrawn, oldest first, with the evidence hashes."""
    return consents_list_as(c, principal=p, borrower_id=borrower_id)


@router.post("/consents/{consent_id}/withdraw", summary="Withdraw a consent")
def consent_withdraw(consent_id: Id, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    """Sets `withdrawn_at` (the row is kept); 409 if already withdrawn."""
    return consent_withdraw_as(c, principal=p, consent_id=consent_id)
