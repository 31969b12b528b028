"""The audit chain's arithmetic: record hashes, redaction, checkpoint messages, chain walks.

Pure functions, no database: the streaming verifier, the evidence bundle and the offline
verifier (``collectguard audit verify-bundle``) all use these, and ``docs/audit.md`` restates
them for third parties. The format is fixed by ADR 0002:

    payload_sha256 = SHA-256(payload text, UTF-8)             # or the digest kept by a redaction
    body = canonical JSON of {"action", "actor", "chain", "payload_sha256", "seq", "subject",
                              "tenant", "time"}               # time: YYYY-MM-DDTHH:MM:SS.ffffffZ
    hash = SHA-256(prev_hash ‖ body)                          # hex; GENESIS = 64 zeros

Hashing the payload's digest instead of the payload lets retention replace an expired payload by
``{"payload_sha256": …, "redacted": true}`` without breaking the chain, and lets a proof carry
other people's records without their payloads.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from json.encoder import encode_basestring
from typing import Any

GENESIS = "0" * 64
_HEAD = '{"payload_sha256":"'
_TAIL = '","redacted":true}'
REDACTED_LEN = len(_HEAD) + 64 + len(_TAIL)
_HEX = frozenset("0123456789abcdef")
CHECKPOINT_DOMAIN = b"collectguard-audit-checkpoint/1\n"

Row = tuple[int, str, "int | None", str, str, str, "str | bytes", str, str]


def canonical_json(obj: Any) -> str:
    """Stable JSON: sorted keys, no whitespace, UTF-8 kept, Decimals and dates as strings."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def hash_time(t: dt.datetime) -> str:
    """The time as hashed: UTC with microseconds, ``2026-04-07T02:00:00.000000Z``.

    A naive time is UTC: SQLite hands stored times back without their zone, and they were stored as UTC.
    """
    t = t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def redaction_digest(payload: str) -> str | None:
    """The original payload's SHA-256 when ``payload`` is a redaction marker, else None."""
    if len(payload) == REDACTED_LEN and payload.startswith(_HEAD) and payload.endswith(_TAIL):
        digest = payload[len(_HEAD) : len(_HEAD) + 64]
        if _HEX.issuperset(digest):
            return digest
    return None


def payload_digest(payload: str) -> str:
    """SHA-256 of a stored payload text, seeing through a redaction marker."""
    return redaction_digest(payload) or hashlib.sha256(payload.encode("utf-8")).hexdigest()


def redacted_payload(payload: str) -> str:
    """The marker that replaces an expired payload; the chain hash stays the same."""
    return canonical_json({"payload_sha256": payload_digest(payload), "redacted": True})


def record_hash(
    prev_hash: str,
    *,
    chain: str,
    seq: int,
    time: str,
    tenant_id: int | None,
    actor: str,
    action: str,
    subject: str,
    payload_sha256: str,
) -> str:
    """SHA-256(prev_hash ‖ canonical JSON of the record's header and payload digest), hex."""
    body = canonical_json(
        {
            "action": action,
            "actor": actor,
            "chain": chain,
            "payload_sha256": payload_sha256,
            "seq": seq,
            "subject": subject,
            "tenant": tenant_id,
            "time": time,
        }
    )
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def record_hash_of(rec: Mapping[str, Any]) -> str:
    """``record_hash`` of an exported record (a dict with ``payload`` or ``payload_sha256``)."""
    digest = rec.get("payload_sha256") or payload_digest(rec["payload"])
    return record_hash(
        rec["prev_hash"],
        chain=rec["chain"],
        seq=rec["seq"],
        time=rec["time"],
        tenant_id=rec["tenant"],
        actor=rec["actor"],
        action=rec["action"],
        subject=rec["subject"],
        payload_sha256=digest,
    )


def chain_walk(
    rows: Iterable[Row],
    *,
    chain: str,
    start_seq: int = 1,
    prev_hash: str = GENESIS,
    checkpoints: Mapping[int, str] | None = None,
    stored_time: bool = False,
) -> tuple[int, int, str, dict[str, Any] | None]:
    """Check consecutive records of one chain; returns (records, last seq, last hash, first fault).

    ``rows`` are (seq, time, tenant, actor, action, subject, payload, prev_hash, hash) ordered by
    seq; ``payload`` is the stored text, as str or as its UTF-8 bytes (SQLite hands them over
    undecoded: they are hashed as they are). ``time`` is in the hashed form, or with
    ``stored_time`` in SQLite's stored form ``YYYY-MM-DD HH:MM:SS.ffffff``, rewritten here (cheaper
    than in SQL). A record whose fields cannot be rendered at all (a NULL or a BLOB where text
    belongs) counts as altered.

    This loop is the verifier's hot path, so the body is assembled by hand, byte-identical to
    ``record_hash`` (a property test holds them equal), with one digest and one record hash per
    record and nothing else that is not needed.
    """
    sha = hashlib.sha256
    enc = encode_basestring
    cps = sorted(kv for kv in (checkpoints or {}).items() if kv[0] >= start_seq)
    cps.append((-1, ""))  # a sentinel no seq reaches
    cp_next = 0
    cp_seq, cp_hash = cps[0]
    mid = ',"chain":' + enc(chain) + ',"payload_sha256":"'
    heads: dict[tuple[str, str], str] = {}
    expected, prev = start_seq, prev_hash
    for seq, tm, tenant, actor, action, subject, payload, prev_stored, stored in rows:
        if seq != expected:
            if seq > expected:
                bad = fault(chain, expected, "missing: the record was deleted")
                return expected - start_seq, expected - 1, prev, bad
            return expected - start_seq, expected - 1, prev, fault(chain, seq, "out of sequence")
        if prev_stored != prev:
            bad = fault(chain, seq, "prev_hash does not match the previous record's hash")
            return expected - start_seq, seq - 1, prev, bad
        try:
            if len(payload) != REDACTED_LEN or (digest := _marker_digest(payload)) is None:
                digest = sha(payload if isinstance(payload, bytes) else payload.encode()).hexdigest()
            head = heads.get((action, actor))
            if head is None:  # few distinct (action, actor) pairs: encode each once
                head = heads[(action, actor)] = '{"action":' + enc(action) + ',"actor":' + enc(actor) + mid
            ten = "null" if tenant is None else tenant
            if stored_time:
                tm = f"{tm[:10]}T{tm[11:]}Z"
            body = f'{prev}{head}{digest}","seq":{seq},"subject":{enc(subject)},"tenant":{ten},"time":"{tm}"}}'
            h = sha(body.encode()).hexdigest()
        except (TypeError, ValueError):  # e.g. a NULL payload: not what was hashed
            h = None
        if h != stored:
            return expected - start_seq, seq - 1, prev, fault(chain, seq, "hash mismatch: the record was altered")
        if seq == cp_seq:
            if h != cp_hash:
                bad = fault(chain, seq, "hash differs from the signed checkpoint")
                return expected - start_seq, seq - 1, prev, bad
            cp_next += 1
            cp_seq, cp_hash = cps[cp_next]
        prev = h
        expected = seq + 1
    return expected - start_seq, expected - 1, prev, None


def _marker_digest(payload: str | bytes) -> str | None:
    return redaction_digest(payload if isinstance(payload, str) else payload.decode("utf-8", "replace"))


def fault(chain: str, seq: int, reason: str) -> dict[str, Any]:
    """A fault as reported by every verifier: the chain, the first broken seq, why."""
    return {"chain": chain, "seq": seq, "reason": reason}


def key_id_of(public_key_hex: str) -> str:
    """A public key's fingerprint: the first 16 hex digits of SHA-256 of the raw key."""
    return hashlib.sha256(bytes.fromhex(public_key_hex)).hexdigest()[:16]


def checkpoint_message(*, chain: str, seq: int, hash: str, time: str, key_id: str) -> bytes:
    """The bytes an ed25519 checkpoint signature covers."""
    return CHECKPOINT_DOMAIN + canonical_json(
        {"chain": chain, "hash": hash, "key_id": key_id, "seq": seq, "time": time}
    ).encode("utf-8")


def signature_ok(public_key_hex: str, signature_hex: str, message: bytes) -> bool:
    """True when ``signature_hex`` is a valid ed25519 signature of ``message``."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex)).verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def checkpoint_ok(cp: Mapping[str, Any]) -> bool:
    """A checkpoint dict (chain, seq, hash, time, key_id, public_key, signature) is well signed."""
    if key_id_of(cp["public_key"]) != cp["key_id"]:
        return False
    msg = checkpoint_message(chain=cp["chain"], seq=cp["seq"], hash=cp["hash"], time=cp["time"], key_id=cp["key_id"])
    return signature_ok(cp["public_key"], cp["signature"], msg)
