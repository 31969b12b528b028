"""The audit port: append hash-chained records in the caller's transaction (DESIGN §10).

Each record's hash is SHA-256(prev_hash ‖ canonical JSON of the record). Appends to one chain are
serialised: a PostgreSQL transaction-scoped advisory lock per chain, and on SQLite the database
write lock (writers run in IMMEDIATE transactions). One chain per tenant.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from collectguard.adapters.db.models import AuditRecord

GENESIS = "0" * 64


def canonical_json(obj: Any) -> str:
    """Stable JSON: sorted keys, no whitespace, UTF-8 kept, Decimals and dates as strings."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def record_hash(prev_hash: str, *, seq: int, time: str, tenant_id: int | None, actor: str,
                action: str, subject: str, payload: str) -> str:
    body = canonical_json({"seq": seq, "time": time, "tenant": tenant_id, "actor": actor,
                           "action": action, "subject": subject, "payload": payload})
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def chain_for(tenant_id: int | None) -> str:
    return f"t{tenant_id}" if tenant_id is not None else "system"


def _lock_chain(session: Session, chain: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:c))"), {"c": "audit:" + chain})


def audit_append(session: Session, *, tenant_id: int | None, actor: str, action: str, subject: str,
                 payload: dict[str, Any], now: dt.datetime) -> AuditRecord:
    """Append one record to the tenant's chain within the session's current transaction."""
    chain = chain_for(tenant_id)
    _lock_chain(session, chain)
    last = session.execute(
        select(AuditRecord.seq, AuditRecord.hash)
        .where(AuditRecord.chain == chain)
        .order_by(AuditRecord.seq.desc())
        .limit(1)
    ).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    body = canonical_json(payload)
    utc = now.astimezone(dt.UTC)
    t = utc.isoformat()
    rec = AuditRecord(chain=chain, seq=seq, time=utc, tenant_id=tenant_id, actor=actor, action=action,
                      subject=subject, payload=body, prev_hash=prev,
                      hash=record_hash(prev, seq=seq, time=t, tenant_id=tenant_id, actor=actor,
                                       action=action, subject=subject, payload=body))
    session.add(rec)
    session.flush()
    return rec


def audit_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(AuditRecord)) or 0)
