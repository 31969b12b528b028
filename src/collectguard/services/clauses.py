"""Contract clauses: the versioned clause texts consents point to, and the clause lint (DESIGN §7).

A clause version is immutable: storing the same (tenant, code, version) again with another text is
a ``Conflict``, because consents given under it carry its SHA-256 as evidence of what was shown.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from collectguard.adapters.db.models import Clause
from collectguard.errors import BadInput, Conflict
from collectguard.rules.clauses import lint_clauses
from collectguard.services.audit import audit_append

__all__ = ["MAX_LINT_CHARS", "clause_get", "clause_store", "clauses_lint"]

MAX_LINT_CHARS = 200_000  # a long privacy policy is ~30k characters; the bound keeps one request under seconds


def clauses_lint(text: str) -> dict[str, Any]:
    """Lint a contract or privacy-policy text -> ``{"verdict", "findings": [...]}`` (pure, no audit)."""
    if not isinstance(text, str):
        raise BadInput("expected text", field="text")
    if len(text) > MAX_LINT_CHARS:
        raise BadInput(f"the text is longer than {MAX_LINT_CHARS} characters", field="text")
    return lint_clauses(text.removeprefix("\ufeff")).model_dump(mode="json")


def clause_store(
    s: Session,
    *,
    tenant_id: int,
    code: str,
    version: str,
    text: str,
    actor: str,
    now: dt.datetime,
    language: str = "zh-CN",
) -> Clause:
    """Store a clause version (idempotent for the same text); ``Conflict`` if the version has another text."""
    for name, value, limit in (("code", code, 64), ("version", version, 32)):
        if not value.strip() or len(value) > limit:
            raise BadInput(f"{name} must be 1–{limit} characters", field=name)
    if not text.strip():
        raise BadInput("the clause text is empty", field="text")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    row = s.scalar(
        select(Clause).where(Clause.tenant_id == tenant_id, Clause.code == code, Clause.version == version)
    )
    if row is not None:
        if row.sha256 != digest:
            raise Conflict(
                f"clause {code} version {version} already exists with another text; publish a new version"
            )
        return row
    row = Clause(
        tenant_id=tenant_id,
        code=code,
        version=version,
        language=language,
        text=text,
        sha256=digest,
        created_at=now,
    )
    s.add(row)
    s.flush()
    audit_append(
        s,
        tenant_id=tenant_id,
        actor=actor,
        action="clause.store",
        subject=f"clause:{row.id}",
        payload={"code": code, "version": version, "sha256": digest},
        now=now,
    )
    return row


def clause_get(s: Session, *, tenant_id: int, code: str, version: str | None = None) -> Clause:
    """A clause version, or the newest version of ``code`` when ``version`` is None (``BadInput`` if none)."""
    q = select(Clause).where(Clause.tenant_id == tenant_id, Clause.code == code)
    if version:
        q = q.where(Clause.version == version)
    row = s.scalar(q.order_by(Clause.created_at.desc(), Clause.id.desc()).limit(1))
    if row is None:
        raise BadInput(
            f"no clause {code!r}" + (f" version {version!r}" if version else ""), field="clause_code"
        )
    return row
