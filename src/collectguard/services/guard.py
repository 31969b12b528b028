"""Guard use cases: judge an event (dry run) and record the decision with its audit record."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from collectguard.adapters.db.models import Decision as DecisionRow
from collectguard.bootstrap import Container
from collectguard.domain.event import CollectionEvent, Decision, parse_event
from collectguard.rules import Guard
from collectguard.services.audit import audit_append


def decision_record(session: Session, *, c: Container, event: CollectionEvent, decision: Decision,
                    tenant_id: int | None, borrower_id: int | None, actor: str,
                    action: str = "guard.check") -> DecisionRow:
    """Store a decision and its audit record in the caller's transaction."""
    now = c.clock()
    event_json = event.model_dump(mode="json", exclude_none=True)
    result = decision.model_dump(mode="json")
    row = DecisionRow(tenant_id=tenant_id, borrower_id=borrower_id, created_at=now, verdict=decision.verdict,
                      pack=decision.pack, pack_version=decision.pack_version or "",
                      rules=" ".join(v.rule for v in decision.violations)[:500], event=event_json,
                      result=result)
    session.add(row)
    session.flush()
    audit_append(session, tenant_id=tenant_id, actor=actor, action=action, subject=f"decision:{row.id}",
                 payload={"decision_id": row.id, "borrower_id": borrower_id, "verdict": decision.verdict,
                          "pack": decision.pack, "pack_version": decision.pack_version,
                          "rules": [v.rule for v in decision.violations],
                          "citations": sorted({c for v in decision.violations for c in v.citations})},
                 now=now, shard_key=str(borrower_id) if borrower_id is not None else None)
    return row


def guard_check(c: Container, *, event: dict[str, Any] | CollectionEvent, tenant_id: int | None,
                actor: str) -> Decision:
    """Judge one event (dry run: no attempt is reserved); the decision is recorded through the audit."""
    ev = event if isinstance(event, CollectionEvent) else parse_event(event)
    decision = Guard.default().check(ev)
    with c.uow() as s:
        decision_record(s, c=c, event=ev, decision=decision, tenant_id=tenant_id, borrower_id=None,
                        actor=actor)
    return decision
