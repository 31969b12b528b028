"""POST /api/v1/assess — the public legality self-check (DESIGN §8): an event, or ``{"text": ...}``.

Public (no login) and rate-limited per client (``Settings.assess_rate_limit_per_minute``).
Nothing is stored: the description is a stranger's account of their debt and their family.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends
from fastapi.openapi.models import Example

from collectguard.api.deps import ContainerDep
from collectguard.api.ratelimit import assess_rate_limit
from collectguard.services.assess import assessment_from_request

router = APIRouter(tags=["assess"])

_EXAMPLES: dict[str, Example] = {
    "text_zh": {"summary": "中文描述", "value": {"text": "我网贷逾期了，"
                                                         "他们给我通讯录里的人发短信说我欠钱不还"}},
    "text_en": {"summary": "English description",
                "value": {"text": "They called me at 11:30 pm and texted my sister that I owe money.",
                          "jurisdiction": "CN"}},
    "event": {"summary": "A structured event (DESIGN §5)",
              "value": {"jurisdiction": "CN", "channel": "call", "time": "2026-03-02T22:30:00+08:00",
                        "recipient": {"role": "borrower"}}},
}
_BODY_SCHEMA = {
    "oneOf": [
        {"type": "object", "required": ["text"], "additionalProperties": False,
         "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 5000},
                        "jurisdiction": {"type": "string", "enum": ["CN", "US", "EU"]}}},
        {"type": "object", "required": ["jurisdiction", "channel", "time", "recipient"],
         "description": "A collection event (DESIGN §5); its JSON Schema is at GET /api/v1/guard/schema"},
    ]
}


@router.post(
    "/assess",
    summary="Assess a past collection contact (public self-check)",
    dependencies=[Depends(assess_rate_limit)],
    openapi_extra={"requestBody": {"required": True,
                                   "content": {"application/json": {"schema": _BODY_SCHEMA}}}},
)
def assess_route(
    c: ContainerDep,
    body: Any = Body(..., openapi_examples=_EXAMPLES),
) -> dict[str, Any]:
    """Returns `{verdict: unlawful|lawful|undetermined, findings, missing_facts, consequences, next_steps,
    facts, …}`. A description is read in Chinese (Simplified or Traditional) or English; each contact
    it describes is judged by the same guard as `/guard/check`. Bad input → 422 naming the field;
    too many requests → 429 with `Retry-After`."""
    return assessment_from_request(body, now=c.clock()).model_dump(mode="json")
