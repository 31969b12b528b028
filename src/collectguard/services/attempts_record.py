"""The writes of a judged contact attempt, as SQLAlchemy Core statements (the attempt hot path).

``record_judged`` stores what ``guard.decision_record`` and ``attempts._reserve`` used to store
through the ORM — the decision, its audit record and, when allowed, the attempt, its meta row, its
audit record and its outbox message — row for row and hash for hash, in the caller's transaction
(``tests/integration/test_attempts_hotpath.py`` compares the two on random sequences). Why Core:
the ORM's unit of work (identity map, flush planning, one flush per row) cost more CPU per attempt
than PostgreSQL spent on the whole transaction (docs/attempts.md, "Under load").

Both audit records go to the borrower's shard of the tenant chain (``audit.chain_for``), the
second chained to the first as ``audit_append`` would have done within one transaction. The chain
lock is taken by its own statement and the head read by a later one: under READ COMMITTED a
statement sees what was committed before it *started*, so a head read in the statement that waits
for the lock could miss the record of the writer that held it.

PostgreSQL, three statements: the chain lock; the decision insert, which also returns the chain's
head and, when allowed, the attempt's id (``nextval``); one statement with data-modifying CTEs for
the attempt, its meta row and both audit records. SQLite (embedded, one writer, no round trips):
one Core statement per row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.orm import Session

from collectguard.adapters.db.models import AuditRecord, ContactAttempt
from collectguard.adapters.db.models import Decision as DecisionRow
from collectguard.adapters.db.models_attempts import AttemptMeta
from collectguard.domain.event import CollectionEvent, Decision
from collectguard.services.audit import (
    CHECKPOINT_EVERY,
    GENESIS,
    SIGNER_INFO_KEY,
    canonical_json,
    chain_for,
    hash_time,
    lock_chain,
    record_hash,
)
from collectguard.services.outbox import outbox_enqueue_attempt

__all__ = ["record_judged"]

_DECISION = insert(DecisionRow.__table__).returning(DecisionRow.__table__.c.id)
_ATTEMPT = insert(ContactAttempt.__table__).returning(ContactAttempt.__table__.c.id)
_META = insert(AttemptMeta.__table__)
_AUDIT = insert(AuditRecord.__table__)
_AUDIT_COLUMNS = ("chain", "seq", "time", "tenant_id", "actor", "action", "subject", "payload", "prev_hash", "hash")
_ATTEMPT_COLUMNS = (
    "tenant_id",
    "case_id",
    "loan_id",
    "borrower_id",
    "contact_id",
    "channel",
    "recipient_role",
    "recipient_key",
    "actor",
    "collector_kind",
    "planned_at",
    "local_date",
    "message",
    "decision_id",
)
# The head as "seq:hash" (a hash is hex), so that one scalar subquery carries both.
_PG_DECIDE = text(
    "INSERT INTO decision (tenant_id, borrower_id, created_at, verdict, pack, pack_version, rules, event, result) "
    "VALUES (:tenant_id, :borrower_id, :created_at, :verdict, :pack, :pack_version, :rules, "
    "CAST(:event AS json), CAST(:result AS json)) "
    "RETURNING id, CASE WHEN :allow THEN nextval(pg_get_serial_sequence('contact_attempt', 'id')) END, "
    "(SELECT seq || ':' || hash FROM audit_record WHERE chain = :chain ORDER BY seq DESC LIMIT 1)"
)
_RESERVE_SQL = (
    "WITH a AS (INSERT INTO contact_attempt (id, {attempt}) VALUES (:id, {attempt_values}) RETURNING id), "
    "m AS (INSERT INTO attempt_meta (attempt_id, purpose, agency_tenant_id) "
    "SELECT id, CAST(:purpose AS VARCHAR), CAST(:agency_tenant_id AS BIGINT) FROM a) "
    "INSERT INTO audit_record ({audit}) VALUES {audit_values}"
)
_PG_RESERVE = text(
    _RESERVE_SQL.format(  # constant column names only, every value is bound
        attempt=", ".join(_ATTEMPT_COLUMNS),
        attempt_values=", ".join(f":{c}" for c in _ATTEMPT_COLUMNS),
        audit=", ".join(_AUDIT_COLUMNS),
        audit_values=", ".join("(" + ", ".join(f":{c}_{i}" for c in _AUDIT_COLUMNS) + ")" for i in range(2)),
    )
)
# Built once, values bound: building a statement per request cost more CPU than running it.
_HEAD = (
    select(AuditRecord.seq, AuditRecord.hash)
    .where(AuditRecord.chain == bindparam("chain"))
    .order_by(AuditRecord.seq.desc())
    .limit(1)
)


def _head(s: Session, chain: str) -> tuple[int, str]:
    """(seq, hash) of the chain's last record; call with the chain's lock held."""
    last = s.execute(_HEAD, {"chain": chain}).first()
    return (int(last[0]), str(last[1])) if last else (0, GENESIS)


class _Chain:
    """Records for one chain, hashed here; the caller holds the chain lock and read the head under it."""

    def __init__(self, chain: str, tenant_id: int | None, seq: int, prev: str) -> None:
        self.chain, self.tenant_id, self.seq, self.prev = chain, tenant_id, seq, prev
        self.rows: list[dict[str, Any]] = []

    def add(self, *, actor: str, action: str, subject: str, payload: dict[str, Any], now: dt.datetime) -> None:
        # The same record ``audit.audit_append`` writes (see its docstring for why the hash covers the digest).
        body = canonical_json(payload)
        utc = now.astimezone(dt.UTC)
        seq = self.seq + 1
        h = record_hash(
            self.prev,
            chain=self.chain,
            seq=seq,
            time=hash_time(utc),
            tenant_id=self.tenant_id,
            actor=actor,
            action=action,
            subject=subject,
            payload_sha256=hashlib.sha256(body.encode("utf-8")).hexdigest(),
        )
        self.rows.append(
            {
                "chain": self.chain,
                "seq": seq,
                "time": utc,
                "tenant_id": self.tenant_id,
                "actor": actor,
                "action": action,
                "subject": subject,
                "payload": body,
                "prev_hash": self.prev,
                "hash": h,
            }
        )
        self.seq, self.prev = seq, h

    def signed(self, s: Session) -> None:
        """Signed checkpoints for the rows just written, as ``audit_append`` adds them."""
        signer = s.info.get(SIGNER_INFO_KEY)
        if signer is None:
            return
        due = [r for r in self.rows if r["seq"] % CHECKPOINT_EVERY == 0]
        for r in due:
            s.add(
                signer.checkpoint(
                    chain=r["chain"], seq=r["seq"], hash=r["hash"], now=r["time"], tenant_id=r["tenant_id"]
                )
            )
        if due:
            s.flush()


def record_judged(
    s: Session,
    *,
    decided_at: dt.datetime,
    now: dt.datetime,
    event: CollectionEvent,
    decision: Decision,
    result: dict[str, Any],
    subject: Any,
    actor: str,
    recipient_key: str,
) -> tuple[int, int | None]:
    """Store a judged attempt; returns (decision id, attempt id or ``None`` when denied).

    ``decided_at`` is the decision's time (``guard.decision_record`` read the clock again there),
    ``now`` the request's; ``result`` is ``decision.model_dump(mode="json")``.
    """
    loan, b, contact = subject.loan, subject.borrower, subject.contact
    tenant_id, allow = loan.tenant_id, decision.verdict == "allow"
    rules = [v.rule for v in decision.violations]
    decision_row = {
        "tenant_id": tenant_id,
        "borrower_id": b.id,
        "created_at": decided_at,
        "verdict": decision.verdict,
        "pack": decision.pack,
        "pack_version": decision.pack_version or "",
        "rules": " ".join(rules)[:500],
        "event": event.model_dump(mode="json", exclude_none=True),
        "result": result,
    }
    name = chain_for(tenant_id, str(b.id))
    pg = s.get_bind().dialect.name == "postgresql"
    attempt_id: int | None = None
    lock_chain(s, name)
    if pg:
        # json.dumps: what SQLAlchemy's JSON type sends, so the stored text is the same.
        decision_row.update(event=json.dumps(decision_row["event"]), result=json.dumps(result))
        decision_id, attempt_id, head = s.execute(_PG_DECIDE, {**decision_row, "allow": allow, "chain": name}).one()
        seq, _, prev = head.partition(":") if head else ("0", ":", GENESIS)
        chain = _Chain(name, tenant_id, int(seq), prev)
    else:
        decision_id = s.execute(_DECISION, decision_row).scalar_one()
        chain = _Chain(name, tenant_id, *_head(s, name))
    chain.add(
        actor=actor,
        action="contact_attempt.check",
        subject=f"decision:{decision_id}",
        now=decided_at,
        payload={
            "decision_id": decision_id,
            "borrower_id": b.id,
            "verdict": decision.verdict,
            "pack": decision.pack,
            "pack_version": decision.pack_version,
            "rules": rules,
            "citations": sorted({c for v in decision.violations for c in v.citations}),
        },
    )
    if not allow:
        s.execute(_AUDIT, chain.rows)
        chain.signed(s)
        return decision_id, None
    role, case_id = subject.role, subject.case.id if subject.case else None
    contact_id = contact.id if contact else None
    row = {
        "tenant_id": tenant_id,
        "case_id": case_id,
        "loan_id": loan.id,
        "borrower_id": b.id,
        "contact_id": contact_id,
        "channel": event.channel,
        "recipient_role": role,
        "recipient_key": recipient_key,
        "actor": actor[:120],
        "collector_kind": event.collector.kind,
        "planned_at": event.time.astimezone(dt.UTC),
        "local_date": event.time.date(),
        "message": event.message,
        "decision_id": decision_id,
    }
    meta = {"purpose": event.purpose, "agency_tenant_id": subject.agency_tenant_id}
    if not pg:
        attempt_id = s.execute(_ATTEMPT, row).scalar_one()
        s.execute(_META, {"attempt_id": attempt_id, **meta})
    assert attempt_id is not None
    chain.add(
        actor=actor,
        action="contact_attempt.reserve",
        subject=f"contact_attempt:{attempt_id}",
        now=now,
        payload={
            "borrower_id": b.id,
            "attempt_id": attempt_id,
            "decision_id": decision_id,
            "case_id": case_id,
            "loan_id": loan.id,
            "contact_id": contact_id,
            "channel": event.channel,
            "role": role,
            "purpose": event.purpose,
            "local_time": event.time.isoformat(),
            "agency_tenant_id": subject.agency_tenant_id,
        },
    )
    if pg:
        audit = {f"{k}_{i}": v for i, r in enumerate(chain.rows) for k, v in r.items()}
        s.execute(_PG_RESERVE, {"id": attempt_id, **row, **meta, **audit})
    else:
        s.execute(_AUDIT, chain.rows)  # executemany: one multi-row INSERT (insertmanyvalues)
    chain.signed(s)
    # The SMS/e-mail/IM leaves only if this commits (the outbox's own insert: its row format is its own).
    outbox_enqueue_attempt(s, attempt=SimpleNamespace(id=attempt_id, **row), now=now)
    return decision_id, attempt_id
