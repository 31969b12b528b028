"""The audit port: append hash-chained records in the caller's transaction (DESIGN §10).

The hash covers the payload's SHA-256, not the payload (ADR 0002, ``audit_proof``), so retention
can redact an expired payload and the chain still verifies. Appends to one chain are serialised:
a PostgreSQL transaction-scoped advisory lock per chain, and on SQLite the database write lock
(writing units of work run in BEGIN IMMEDIATE). UNIQUE(chain, seq) is the last line of defence:
if a caller ever appends outside those locks, one of two racing writers fails instead of forking
the chain, and since ``seq`` is computed under the lock (no database sequence) a rolled-back
transaction leaves no gap.

Chains: one per tenant (``t<tenant_id>``, ``system`` without one). A caller that passes
``shard_key`` (the borrower id) spreads a tenant over ``AUDIT_SHARDS`` chains
(``t<tenant_id>.s<nn>``) so that writers for different borrowers do not queue on one lock.

Every ``CHECKPOINT_EVERY``-th record of a chain gets an ed25519-signed checkpoint in the same
transaction when the session carries a signer (``audit_signing.audit_signer_attach``); otherwise
``audit_checkpoint_run`` signs the missed boundaries later.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zlib
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from collectguard.adapters.db.models import AuditRecord
from collectguard.adapters.db.models_audit import AuditCheckpoint
from collectguard.errors import BadInput
from collectguard.services.audit_proof import (
    GENESIS,
    canonical_json,
    hash_time,
    payload_digest,
    record_hash,
    redacted_payload,
)

__all__ = [
    "AUDIT_SHARDS",
    "CHECKPOINT_EVERY",
    "GENESIS",
    "SIGNER_INFO_KEY",
    "audit_append",
    "audit_count",
    "canonical_json",
    "chain_for",
    "hash_time",
    "lock_chain",
    "payload_digest",
    "record_hash",
    "redacted_payload",
]

CHECKPOINT_EVERY = 1000
AUDIT_SHARDS = 16
SIGNER_INFO_KEY = "collectguard.audit_signer"
_HEADS_KEY = "collectguard.audit_heads"


def chain_for(tenant_id: int | None, shard_key: str | None = None) -> str:
    """The deterministic chain name for a tenant (and, when given, a borrower's shard)."""
    base = f"t{tenant_id}" if tenant_id is not None else "system"
    if shard_key is None:
        return base
    # crc32, not hash(): it must be the same in every process and every release.
    return f"{base}.s{zlib.crc32(shard_key.encode('utf-8')) % AUDIT_SHARDS:02d}"


def lock_chain(session: Session, chain: str) -> None:
    """Serialise writers of one chain until the transaction ends (PostgreSQL; SQLite has one writer)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:c))"), {"c": "audit:" + chain})


def audit_append(
    session: Session,
    *,
    tenant_id: int | None,
    actor: str,
    action: str,
    subject: str,
    payload: dict[str, Any],
    now: dt.datetime,
    shard_key: str | None = None,
) -> AuditRecord:
    """Append one record to its chain within the session's current transaction.

    ``subject`` names what the record is about as ``<kind>:<internal id>`` (``borrower:12``,
    ``case:7``, ``contact_attempt:99``): evidence export and retention find a borrower's records
    by it (or by a top-level ``borrower_id`` in the payload).
    """
    if now.tzinfo is None:
        raise BadInput("audit time must be timezone-aware", field="now")
    if set(payload) == {"payload_sha256", "redacted"}:
        # Such a payload would read as a redaction marker and its digest be taken on trust.
        raise BadInput("payload has the shape of a redaction marker", field="payload")
    chain = chain_for(tenant_id, shard_key)
    head = _head_in_transaction(session, chain)
    if head is not None:  # this transaction appended to the chain already: it holds the lock and the head
        seq, prev = head.seq + 1, head.hash
    else:
        lock_chain(session, chain)
        last = session.execute(
            select(AuditRecord.seq, AuditRecord.hash)
            .where(AuditRecord.chain == chain)
            .order_by(AuditRecord.seq.desc())
            .limit(1)
        ).first()
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    body = canonical_json(payload)
    utc = now.astimezone(dt.UTC)
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    h = record_hash(
        prev,
        chain=chain,
        seq=seq,
        time=hash_time(utc),
        tenant_id=tenant_id,
        actor=actor,
        action=action,
        subject=subject,
        payload_sha256=digest,
    )
    rec = AuditRecord(
        chain=chain,
        seq=seq,
        time=utc,
        tenant_id=tenant_id,
        actor=actor,
        action=action,
        subject=subject,
        payload=body,
        prev_hash=prev,
        hash=h,
    )
    session.add(rec)
    if seq % CHECKPOINT_EVERY == 0:
        signer = session.info.get(SIGNER_INFO_KEY)
        if signer is not None:
            session.add(signer.checkpoint(chain=chain, seq=seq, hash=h, now=utc, tenant_id=tenant_id))
    session.flush()
    _remember_head(session, chain, rec)
    return rec


def _head_in_transaction(session: Session, chain: str) -> AuditRecord | None:
    """The record this very transaction last appended to ``chain``, if it still stands.

    Valid only within the transaction that took the chain's lock (a commit ends it and the next
    transaction is another object) and while the record is persistent (a rolled-back savepoint
    turns it transient): then the lock is held and no other writer can have appended since.
    """
    held = session.info.get(_HEADS_KEY)
    if held is None or held[0] is not session.get_transaction():
        return None
    rec: AuditRecord | None = held[1].get(chain)
    if rec is None or not sa_inspect(rec).persistent:
        return None
    return rec


def _remember_head(session: Session, chain: str, rec: AuditRecord) -> None:
    tx = session.get_transaction()
    held = session.info.get(_HEADS_KEY)
    if held is None or held[0] is not tx:
        held = (tx, {})
        session.info[_HEADS_KEY] = held
    held[1][chain] = rec


def audit_count(session: Session) -> int:
    """Number of audit records in all chains."""
    return int(session.scalar(select(func.count()).select_from(AuditRecord)) or 0)


def audit_checkpoint_count(session: Session) -> int:
    """Number of signed checkpoints in all chains."""
    return int(session.scalar(select(func.count()).select_from(AuditCheckpoint)) or 0)
