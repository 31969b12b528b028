"""POST /api/v1/clauses/lint — a contract or privacy-policy text -> findings (DESIGN §7 shape).

The body is the text itself (``text/plain``, UTF-8) or JSON ``{"text": "…"}``. Nothing is stored;
the lint is pure. Permission ``clauses.lint`` (admin, compliance officer, auditor).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from collectguard.api.deps import PrincipalDep
from collectguard.errors import BadInput
from collectguard.services.authz import require
from collectguard.services.clauses import clauses_lint

router = APIRouter(tags=["clauses"])

_BODY = {"requestBody": {"required": True, "content": {
    "text/plain": {"schema": {"type": "string"}, "example": "您同意我们读取您的通讯录并用于逾期催收。"},
    "application/json": {"schema": {"type": "object", "required": ["text"], "additionalProperties": False,
                                    "properties": {"text": {"type": "string"}}}},
}}}


def _text(raw: bytes, content_type: str) -> str:
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput("the body is not UTF-8", field="body") from None
    if content_type.split(";")[0].strip().lower() != "application/json":
        return decoded
    try:
        obj = json.loads(decoded)
    except json.JSONDecodeError as exc:
        raise BadInput(f"not valid JSON ({exc.msg})", field="body") from None
    if not isinstance(obj, dict) or set(obj) != {"text"}:
        raise BadInput('expected a JSON object {"text": "…"} and nothing else', field="text")
    if not isinstance(obj["text"], str):
        raise BadInput("must be a string", field="text")
    return obj["text"]


@router.post("/clauses/lint", summary="Lint a contract or privacy-policy text", openapi_extra=_BODY)
async def clauses_lint_route(request: Request, p: PrincipalDep) -> dict[str, Any]:
    """`{"verdict": "clean" | "problems", "findings": [{rule, citations, span, text, message_zh,
    message_en}]}`; spans are code-point offsets into the text; document-level findings have `[0, 0]`."""
    require(p, "clauses.lint")
    text = _text(await request.body(), request.headers.get("content-type", ""))
    if not text.strip():
        raise BadInput("the text is empty", field="text")
    return await run_in_threadpool(clauses_lint, text)
