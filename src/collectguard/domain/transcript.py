"""The transcript (QA input) and the QA result (QA output), DESIGN.md §7 "Transcript input (`qa`)".

A transcript is a collection event (§5) whose ``message`` is replaced by ``turns``; ``time`` is the
start of the call or chat. It is modelled as a subclass of ``CollectionEvent`` so that every event
field, and every optional field §5 gains later, is accepted and validated exactly as ``check`` does.

Documented extensions (optional, for storage and scorecards; nothing is judged on them):
``id`` (the caller's id of the recording or chat), ``case_id`` (our collection case) and
``collector.id`` (who spoke for the collector: an agent id or user name).

Pure data: pydantic v2 models, no I/O and no clock; unknown fields are refused (bad input).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from collectguard.domain.event import CollectionEvent, Collector, bad_input_from
from collectguard.errors import BadInput

__all__ = [
    "QaFinding",
    "QaResult",
    "QaSignal",
    "Severity",
    "Transcript",
    "TranscriptCollector",
    "Turn",
    "parse_transcript",
    "parse_transcript_json",
]

Severity = Literal["critical", "major", "minor"]
Speaker = Literal["collector", "recipient"]
SignalKind = Literal["stop", "not_debtor", "offer_to_pay", "hardship"]

_FROZEN = ConfigDict(extra="forbid", frozen=True)
_MAX_ID = 2**63 - 1


class Turn(BaseModel):
    """One utterance (call) or message (chat). ``t``: seconds from the start of the call or chat."""

    model_config = _FROZEN

    speaker: Speaker
    t: Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)]
    text: str


class TranscriptCollector(Collector):
    """``collector`` as in §5, plus the optional ``id`` of the agent who spoke (an extension)."""

    id: str | None = Field(default=None, min_length=1, max_length=120)


class Transcript(CollectionEvent):
    """A call or chat to judge turn by turn: every event field but ``message``, plus ``turns``."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="Transcript",
        json_schema_extra={"description": "A collection call or chat: an event with turns instead of a message."},
    )

    id: str | None = Field(default=None, min_length=1, max_length=128, description="the caller's id (extension)")
    case_id: Annotated[int, Field(ge=1, le=_MAX_ID, strict=True)] | None = Field(
        default=None, description="our collection case id (extension)"
    )
    collector: TranscriptCollector = TranscriptCollector()
    turns: tuple[Turn, ...] = Field(min_length=1)

    @field_validator("message", mode="before")
    @classmethod
    def _no_message(cls, v: Any) -> Any:
        # A transcript's text lives in its turns; a message beside them would go unjudged or
        # be judged twice, so it is refused rather than guessed at.
        raise ValueError("a transcript carries its text in turns, not in message")

    def event(self) -> CollectionEvent:
        """The call as a collection event without a message (the facts every turn shares)."""
        fields = {name: getattr(self, name) for name in CollectionEvent.model_fields if name != "message"}
        fields["collector"] = Collector.model_validate(self.collector.model_dump(exclude={"id"}))
        return CollectionEvent.model_validate(fields)


class QaFinding(BaseModel):
    """A broken rule. ``turn`` is the 0-based index in ``turns`` (``None``: the call as a whole);
    ``span`` is ``[start, end)`` in that turn's text (code points), ``None`` for a whole-call finding."""

    model_config = _FROZEN

    rule: str
    citations: tuple[str, ...]
    turn: int | None
    span: tuple[int, int] | None
    message_zh: str
    message_en: str
    severity: Severity
    text: str | None = None
    category: str | None = None


class QaSignal(BaseModel):
    """What a recipient's turn tells the QA: a request to stop, not the debtor, an offer to pay, hardship."""

    model_config = _FROZEN

    turn: int
    kind: SignalKind
    span: tuple[int, int]
    text: str


class QaResult(BaseModel):
    """The QA of one transcript. ``verdict`` is ``violations`` when there is at least one finding.

    ``warnings`` (the packs' cautions) never change the verdict; ``score`` (0–100) is the automatic
    quality score; ``severity`` the worst finding's.
    """

    model_config = _FROZEN

    verdict: Literal["clean", "violations"]
    findings: tuple[QaFinding, ...] = ()
    warnings: tuple[QaFinding, ...] = ()
    signals: tuple[QaSignal, ...] = ()
    severity: Severity | None = None
    score: int = 100
    pack: str | None = None
    pack_version: str | None = None
    id: str | None = None
    case_id: int | None = None


def parse_transcript(obj: Any, *, line: int | None = None, prefix: str | None = None) -> Transcript:
    """Validate a decoded JSON value as a ``Transcript``; ``BadInput`` naming ``line`` and the field.

    ``prefix`` goes before the field path (the index of a transcript in a list: ``2.turns.0.t``).
    """
    # Through JSON again, so that a decoded document and a JSON Lines line are validated alike
    # (JSON mode: a date-time must be text, never a Python object).
    try:
        encoded = json.dumps(obj, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        raise BadInput("not a JSON value", field=prefix, line=line) from None
    try:
        return Transcript.model_validate_json(encoded)
    except ValidationError as exc:
        raise bad_input_from(exc, line=line, prefix=prefix) from None


def parse_transcript_json(text: str | bytes, *, line: int | None = None) -> Transcript:
    """Validate one JSON text (e.g. a JSON Lines line) as a ``Transcript``; ``BadInput`` if bad."""
    try:
        return Transcript.model_validate_json(text)
    except ValidationError as exc:
        raise bad_input_from(exc, line=line) from None
