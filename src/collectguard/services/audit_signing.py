"""Signed checkpoints of the audit chains (ed25519).

The key: ``Settings.audit_signing_key`` (base64 of a 32-byte ed25519 seed). Outside production an
empty setting derives the seed from ``secret_key``, so development and tests sign without setup;
production refuses to sign without its own key (docs/audit.md says how to make one).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from collectguard.adapters.db.models import AuditRecord
from collectguard.adapters.db.models_audit import AuditCheckpoint
from collectguard.errors import BadInput
from collectguard.services.audit import CHECKPOINT_EVERY, SIGNER_INFO_KEY, lock_chain
from collectguard.services.audit_proof import checkpoint_message, hash_time, key_id_of

if TYPE_CHECKING:
    from collectguard.bootstrap import Container
    from collectguard.settings import Settings


class AuditSigner:
    """Signs checkpoints and evidence manifests with one ed25519 key."""

    def __init__(self, seed: bytes) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self.public_key = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
        self.key_id = key_id_of(self.public_key)

    def sign(self, message: bytes) -> str:
        """The hex ed25519 signature of ``message``."""
        return self._key.sign(message).hex()

    def checkpoint(
        self, *, chain: str, seq: int, hash: str, now: dt.datetime, tenant_id: int | None
    ) -> AuditCheckpoint:
        """A signed checkpoint row for (chain, seq, hash) at ``now`` (not yet added to a session)."""
        utc = now.astimezone(dt.UTC)
        msg = checkpoint_message(chain=chain, seq=seq, hash=hash, time=hash_time(utc), key_id=self.key_id)
        return AuditCheckpoint(
            chain=chain,
            seq=seq,
            hash=hash,
            time=utc,
            tenant_id=tenant_id,
            key_id=self.key_id,
            public_key=self.public_key,
            signature=self.sign(msg),
        )


def audit_signer(settings: Settings) -> AuditSigner:
    """The checkpoint signer configured by ``settings``."""
    if settings.audit_signing_key:
        try:
            seed = base64.b64decode(settings.audit_signing_key, validate=True)
        except ValueError as exc:
            raise BadInput("not base64", field="audit_signing_key") from exc
        if len(seed) != 32:
            raise BadInput("must be base64 of exactly 32 bytes", field="audit_signing_key")
        return AuditSigner(seed)
    if settings.environment == "production":
        raise BadInput("COLLECTGUARD_AUDIT_SIGNING_KEY must be set in production", field="audit_signing_key")
    return AuditSigner(hashlib.sha256(("audit-signing:" + settings.secret_key).encode("utf-8")).digest())


def audit_signer_attach(c: Container) -> AuditSigner:
    """Make every later session of ``c`` carry the signer, so appends sign their own checkpoints."""
    signer = audit_signer(c.settings)
    c.sessions.configure(info={SIGNER_INFO_KEY: signer})
    return signer


def checkpoint_dict(cp: AuditCheckpoint) -> dict[str, Any]:
    """A checkpoint as exported and as ``audit_proof.checkpoint_ok`` reads it."""
    return {
        "chain": cp.chain,
        "seq": cp.seq,
        "hash": cp.hash,
        "time": hash_time(cp.time),
        "key_id": cp.key_id,
        "public_key": cp.public_key,
        "signature": cp.signature,
    }


def checkpoint_sign_due(
    session: Session,
    signer: AuditSigner,
    *,
    now: dt.datetime,
    chains: set[str] | None = None,
    heads: bool = True,
) -> list[dict[str, Any]]:
    """Sign every ``CHECKPOINT_EVERY`` boundary that lacks a checkpoint, and each chain's head.

    Runs in the caller's transaction; returns the new checkpoints.
    """
    r, k = AuditRecord, AuditCheckpoint
    missing = (
        select(r.chain, r.seq, r.hash, r.tenant_id)
        .outerjoin(k, and_(k.chain == r.chain, k.seq == r.seq))
        .where(r.seq % CHECKPOINT_EVERY == 0, k.id.is_(None))
    )
    todo = {(row.chain, row.seq): row for row in session.execute(missing)}
    if heads:
        head_seq = select(r.chain, func.max(r.seq).label("seq")).group_by(r.chain).subquery()
        q = (
            select(r.chain, r.seq, r.hash, r.tenant_id)
            .join(head_seq, and_(head_seq.c.chain == r.chain, head_seq.c.seq == r.seq))
            .outerjoin(k, and_(k.chain == r.chain, k.seq == r.seq))
            .where(k.id.is_(None))
        )
        todo.update({(row.chain, row.seq): row for row in session.execute(q)})
    made = []
    for (chain, seq), row in sorted(todo.items()):
        if chains is not None and chain not in chains:
            continue
        lock_chain(session, chain)  # two concurrent runs must not sign the same (chain, seq) twice
        if session.scalar(select(k.id).where(k.chain == chain, k.seq == seq)) is not None:
            continue
        cp = signer.checkpoint(chain=chain, seq=seq, hash=row.hash, now=now, tenant_id=row.tenant_id)
        session.add(cp)
        made.append(checkpoint_dict(cp))
    session.flush()
    return made


def audit_checkpoint_run(c: Container, *, now: dt.datetime, chains: set[str] | None = None) -> dict[str, Any]:
    """``audit checkpoint``: sign the due boundaries and the chain heads now."""
    signer = audit_signer(c.settings)
    with c.uow() as s:
        made = checkpoint_sign_due(s, signer, now=now, chains=chains)
    return {
        "key_id": signer.key_id,
        "public_key": signer.public_key,
        "signed": len(made),
        "checkpoints": [{"chain": m["chain"], "seq": m["seq"], "hash": m["hash"]} for m in made],
    }
