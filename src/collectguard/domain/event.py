"""The collection event (guard input) and the decision (guard output), DESIGN.md §5.

Pure data: pydantic v2 models, no I/O and no clock. ``extra="forbid"`` everywhere, so a
misspelt or unknown field is refused (bad input) instead of being silently ignored: a guard
that ignored ``no_contact_requsted`` would allow what it must deny.

Counts and flags use strict types: ``"3"`` or ``true`` for a count is refused, never guessed.
Rates are ``Decimal`` so that ``4 × 3.45`` is exactly ``13.8``.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from collectguard.errors import BadInput

__all__ = [
    "Channel",
    "CollectionEvent",
    "Collector",
    "Conduct",
    "ConsentFacts",
    "Debt",
    "Decision",
    "Disclosure",
    "History",
    "LintHit",
    "Recipient",
    "Role",
    "Violation",
    "bad_input_from",
    "describe_validation_error",
    "parse_event",
    "parse_event_json",
]

Jurisdiction = Literal["CN", "US", "EU"]
Channel = Literal["call", "sms", "email", "im", "app_push", "visit", "letter", "public_post"]
Purpose = Literal["collect", "locate", "relay_message", "reminder", "validation_notice"]
Role = Literal[
    "borrower",
    "guarantor",
    "spouse",
    "emergency_contact",
    "relative",
    "colleague",
    "employer",
    "contact_list_entry",
    "public",
    "other_third_party",
]
Source = Literal["borrower_designated", "contact_list", "public_record", "purchased"]
Disclosure = Literal["debt_existence", "debt_amount", "overdue_dates", "personal_info"]
Conduct = Literal[
    "threat",
    "insult",
    "violence",
    "impersonate_authority",
    "false_legal_claim",
    "fake_documents",
    "stalking",
    "restrict_liberty",
    "enter_home",
    "extra_fees",
    "induce_borrowing",
]
ConsentForm = Literal["none", "bundled", "separate"]
ConsentKind = Literal["contact_list", "third_party_contact", "agreed_hours"]
CollectorKind = Literal["lender", "agency"]
LenderType = Literal["licensed_institution", "small_loan_company", "private", "unlicensed"]
DebtStatus = Literal["valid", "disputed", "paid", "illegal"]

Count = Annotated[int, Field(ge=0, strict=True)]
Flag = Annotated[bool, Field(strict=True)]
Rate = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]

# "HH:MM-HH:MM"; 24:00 is allowed as an end ("20:00-24:00").
_HOURS = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d-(?:(?:[01]\d|2[0-3]):[0-5]\d|24:00)$")

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class Recipient(BaseModel):
    """Who receives the contact."""

    model_config = _FROZEN

    role: Role
    count: Annotated[int, Field(ge=1, strict=True)] = 1
    source: Source | None = None
    no_contact_requested: Flag = False
    represented_by_attorney: Flag = False
    employer_prohibits: Flag = False


class ConsentFacts(BaseModel):
    """The borrower's consents as they stand at the time of the contact."""

    model_config = _FROZEN

    contact_list: ConsentForm = "none"
    third_party_contact: ConsentForm = "none"
    agreed_hours: str | None = Field(
        default=None, description='contact hours agreed, "HH:MM-HH:MM" (may cross midnight)'
    )
    withdrawn: tuple[ConsentKind, ...] = ()

    @field_validator("agreed_hours")
    @classmethod
    def _check_hours(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not _HOURS.match(v):
            raise ValueError('must be "HH:MM-HH:MM", e.g. "09:00-21:00" or "21:00-07:00"')
        if v[:5] == v[6:] or (v[:5] == "00:00" and v[6:] == "24:00"):
            # An empty or a 24-hour window says nothing usable about agreed hours.
            raise ValueError("start and end must differ and the window must not cover the whole day")
        return v


class History(BaseModel):
    """Counters and states from earlier contacts; an absent count is 0."""

    model_config = _FROZEN

    connected_calls_today: Count = 0
    attempts_today_same_method: Count = 0
    consecutive_failed_attempts: Count = 0
    borrower_unreachable: Flag = False
    calls_7d: Count = 0
    last_conversation_at: date | None = None
    prior_contacts_with_recipient: Count = 0
    messages_today: Count = 0


class Collector(BaseModel):
    """Who contacts: the lender itself or an agency acting for it."""

    model_config = _FROZEN

    kind: CollectorKind = "lender"
    outsourcing_notified: Flag = False
    processing_contract: Flag = False
    visitors: Annotated[int, Field(ge=0, strict=True)] | None = None
    opt_out_included: Flag = False


class Debt(BaseModel):
    """Facts about the debt being collected."""

    model_config = _FROZEN

    days_past_due: Count | None = None
    annual_rate: Rate | None = Field(default=None, description="true annualised cost of the loan, in percent")
    lender_type: LenderType | None = None
    lpr_at_signing: Rate | None = Field(default=None, description="one-year LPR at contract signing, in %")
    status: DebtStatus = "valid"
    validation_notice_sent: Flag = False
    first_communication_at: date | None = None


_NO_CONSENT, _NO_HISTORY, _LENDER, _NO_DEBT_FACTS = ConsentFacts(), History(), Collector(), Debt()


class CollectionEvent(BaseModel):
    """One contact, planned or done: the guard's input (DESIGN.md §5).

    ``time`` must carry an offset and is read as the wall-clock time at the recipient.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="CollectionEvent",
        json_schema_extra={"description": "A collection contact, planned or done (the guard's input)."},
    )

    jurisdiction: Jurisdiction
    channel: Channel
    time: AwareDatetime = Field(description="ISO-8601 with offset, local time at the recipient")
    purpose: Purpose = "collect"
    recipient: Recipient
    message: str | None = None
    discloses: tuple[Disclosure, ...] = ()
    conduct: tuple[Conduct, ...] = ()
    consent: ConsentFacts = _NO_CONSENT
    history: History = _NO_HISTORY
    collector: Collector = _LENDER
    debt: Debt = _NO_DEBT_FACTS

    @field_validator("time", mode="before")
    @classmethod
    def _time_is_text(cls, v: Any) -> Any:
        # pydantic would read a bare number as a Unix timestamp in UTC; the contract wants the
        # recipient's wall clock with its offset, so only text (or an aware datetime) is taken.
        if isinstance(v, (str, datetime)):
            return v
        raise ValueError("must be an ISO-8601 date-time with an offset, e.g. 2026-03-02T21:30:00+08:00")


class Violation(BaseModel):
    """One broken rule (or, in ``Decision.warnings``, one caution) with its legal basis."""

    model_config = _FROZEN

    rule: str
    citations: tuple[str, ...]
    message_zh: str
    message_en: str


class LintHit(BaseModel):
    """A lint finding; ``span`` is ``[start, end)`` in the ORIGINAL message (code points)."""

    model_config = _FROZEN

    category: str
    span: tuple[int, int]
    text: str


class Decision(BaseModel):
    """The guard's answer. A deny has at least one violation; warnings never change the verdict."""

    model_config = _FROZEN

    verdict: Literal["allow", "deny"]
    pack: str
    pack_version: str | None
    violations: tuple[Violation, ...] = ()
    warnings: tuple[Violation, ...] = ()
    lint: tuple[LintHit, ...] = ()


_MESSAGES = {
    "missing": "missing required field",
    "extra_forbidden": "unknown field",
    "json_invalid": "not valid JSON",
    "model_type": "expected a JSON object",
    "model_attributes_type": "expected a JSON object",
}


def bad_input_from(exc: ValidationError, *, line: int | None = None, prefix: str | None = None) -> BadInput:
    """Turn a pydantic ``ValidationError`` into ``BadInput`` naming the first bad dotted field.

    ``prefix`` is put before the field path (e.g. the index of an event in an array).
    """
    field, msg = describe_validation_error(exc, prefix=prefix)
    return BadInput(msg, field=field, line=line, detail={"error_count": exc.error_count()})


def describe_validation_error(exc: ValidationError, *, prefix: str | None = None) -> tuple[str | None, str]:
    """(dotted field or None, plain message) for the first error of a ``ValidationError``."""
    err = exc.errors(include_url=False)[0]
    loc = err.get("loc", ())
    field = ".".join(str(p) for p in (prefix, *loc) if p is not None) or None
    kind = err.get("type", "")
    msg = _MESSAGES.get(kind) or str(err.get("msg", "invalid value"))
    if kind == "value_error":
        msg = msg.removeprefix("Value error, ")
    if kind == "json_invalid":
        ctx = err.get("ctx") or {}
        if ctx.get("error"):
            msg = f"not valid JSON ({ctx['error']})"
    return field, msg


def parse_event(obj: Any, *, line: int | None = None) -> CollectionEvent:
    """Validate a decoded JSON value (a dict) as a ``CollectionEvent``; raise ``BadInput`` if bad."""
    try:
        return CollectionEvent.model_validate(obj)
    except ValidationError as exc:
        raise bad_input_from(exc, line=line) from None


def parse_event_json(text: str | bytes, *, line: int | None = None) -> CollectionEvent:
    """Validate one JSON text (e.g. a JSON Lines line) as a ``CollectionEvent``; ``BadInput`` if bad."""
    try:
        return CollectionEvent.model_validate_json(text)
    except ValidationError as exc:
        raise bad_input_from(exc, line=line) from None
