"""QA (质检) of call transcripts and chats over HTTP (DESIGN §7 shapes), permission ``qa.run``.

- ``POST /qa``: one transcript -> one result, a list -> a list of results; each is stored
  (idempotently), audited, and sampled for human review when it has violations (or by the seeded
  random draw for clean calls). A bad transcript answers 422 naming the field (``2.turns.0.t``
  for the third of a list) and nothing of the request is stored.
- ``GET /qa/queue``: the human-review queue, worst first.
- ``POST /qa/reviews``: a reviewer's score (0–100) and notes for one result.
- ``GET /qa/scorecards``: per collector, calls checked, violations per 100 calls, scores.
- ``GET /qa/results/{qa_id}``: one result with its transcript (an audited read of personal data).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from collectguard.api.deps import ContainerDep, PrincipalDep
from collectguard.domain.transcript import Transcript
from collectguard.services.qa import (
    MAX_BATCH,
    qa_queue_as,
    qa_result_read_as,
    qa_review_as,
    qa_run_as,
    qa_scorecards_as,
)

router = APIRouter(tags=["qa"])
MAX_ID = 2**63 - 1

_EXAMPLE = {
    "jurisdiction": "CN", "channel": "call", "time": "2026-04-07T10:00:00+08:00", "recipient": {"role": "borrower"},
    "id": "rec-0001", "collector": {"kind": "lender", "id": "agent-07"},
    "turns": [{"speaker": "collector", "t": 0.0, "text": "您好，请问是李女士吗？您的借款已逾期3天，应还1200元。"},
              {"speaker": "recipient", "t": 4.2, "text": "我周五还。"},
              {"speaker": "collector", "t": 7.9, "text": "好的，已记录您周五还款的承诺，谢谢。"}],
}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """The schema with its local ``$defs`` references written out: OpenAPI resolves ``#/$defs/…``
    against the whole document, where they do not exist."""
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


_SCHEMA = Transcript.model_json_schema()
_ONE = _inline(_SCHEMA, _SCHEMA.get("$defs", {}))
_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"oneOf": [_ONE, {"type": "array", "minItems": 1, "maxItems": MAX_BATCH, "items": _ONE}]},
    "example": _EXAMPLE}}}}


class ReviewIn(BaseModel):
    """A human reviewer's verdict on one QA result."""

    model_config = ConfigDict(extra="forbid")
    qa_id: int = Field(ge=1, le=MAX_ID)
    score: int = Field(ge=0, le=100, strict=True, description="0 (unacceptable) to 100 (exemplary)")
    notes: str = Field(default="", max_length=4000)


@router.post("/qa", summary="QA of one transcript or a list", openapi_extra=_BODY)
def qa_run_route(
    c: ContainerDep, p: PrincipalDep, body: Annotated[Any, Body(include_in_schema=False)]
) -> Any:
    """`{"verdict": "clean" | "violations", "findings": [{rule, citations, turn, span, message_zh,
    message_en, severity, text, category}], "warnings", "signals", "severity", "score", "qa_id",
    "sampled", "sample_reason", …}` per transcript. `turn` is 0-based; `turn: null` is a finding
    about the call as a whole (quiet hours, caps, who was called)."""
    return qa_run_as(c, principal=p, body=body)


@router.get("/qa/queue", summary="The human-review queue (sampled calls, worst first)")
def qa_queue_route(
    c: ContainerDep,
    p: PrincipalDep,
    include_reviewed: Annotated[bool, Query(description="also list calls already reviewed")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    return qa_queue_as(c, principal=p, include_reviewed=include_reviewed, limit=limit)


@router.post("/qa/reviews", status_code=201, summary="Score a QA result (human review)")
def qa_review_route(body: ReviewIn, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    """404 for an unknown QA result or one of another tenant."""
    return qa_review_as(c, principal=p, qa_id=body.qa_id, score=body.score, notes=body.notes)


@router.get("/qa/scorecards", summary="Collector scorecards")
def qa_scorecards_route(c: ContainerDep, p: PrincipalDep) -> list[dict[str, Any]]:
    """Per `collector.id`: calls, calls_with_violations, violations, violations_per_100_calls,
    critical_calls, average_score, reviews, average_review_score."""
    return qa_scorecards_as(c, principal=p)


@router.get("/qa/results/{qa_id}", summary="One QA result with its transcript")
def qa_result_route(qa_id: Annotated[int, Path(ge=1, le=MAX_ID)], c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    return qa_result_read_as(c, principal=p, qa_id=qa_id)


@router.get("/qa/schema", summary="JSON Schema of the transcript")
def qa_schema(p: PrincipalDep) -> dict[str, Any]:
    return Transcript.model_json_schema()
