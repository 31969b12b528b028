"""PII key rotation: re-encrypt every encrypted value under the current key (``collectguard keys rotate``).

Every ciphertext names its key (``adapters.crypto``: version byte, key id byte), so a rotation is:

1. configure the new key as the current one with a new id (``COLLECTGUARD_PII_KEY`` and
   ``COLLECTGUARD_PII_KEY_ID``) and the old one as readable (``COLLECTGUARD_PII_OLD_KEYS=1:<base64>``);
   from then on new values use the new key and old ones still decrypt;
2. ``keys rotate`` re-encrypts, in batches of one transaction each, every value whose key id is not
   the current one. A batch commits or not as a whole, and a value already under the current key is
   skipped, so an interrupted run resumes where it stopped and a second run changes nothing;
3. ``keys status`` shows no value left under an old key: the old key can go.

What is encrypted is found, not listed: every ``*_enc`` binary column of every table in
``adapters/db/models*.py``, plus the encrypted e-mail address (``to_enc``) inside outbox payloads.

The look-up hashes (``*_hmac``, ``collection_stop.contact_key``, ``contact_attempt.recipient_key``)
do not change: their key is separate from the encryption keys (``adapters.crypto``). Before touching
anything the run checks that every key id in use has a configured key that really opens it, and that
the look-up key reproduces stored hashes, so a wrong or missing key is refused up front (``BadInput``)
rather than half-way.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import pkgutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    LargeBinary,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from collectguard.adapters.crypto import PiiCipher, PiiKeyError
from collectguard.adapters.db import models as _models
from collectguard.adapters.db.models import Base, Borrower, Contact
from collectguard.bootstrap import Container
from collectguard.errors import BadInput
from collectguard.services.audit import audit_append
from collectguard.services.retention import ERASED

Progress = Callable[[str, int], Callable[[int], None]]
DEFAULT_BATCH = 1000
JSON_FIELD = "to_enc"  # an encrypted value (base64) inside a JSON payload (services/outbox.email_payload)


def _quiet(description: str, total: int) -> Callable[[int], None]:
    return lambda n: None


@dataclass(frozen=True)
class Target:
    """One table holding encrypted values: its ``*_enc`` columns, or a JSON column carrying ``to_enc``."""

    table: Table
    columns: tuple[str, ...] = ()
    json_column: str | None = None


def _load_models() -> None:
    package = _models.__name__.rpartition(".")[0]
    for mod in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if mod.name.startswith("models"):
            importlib.import_module(f"{package}.{mod.name}")


def encrypted_targets() -> list[Target]:
    """Every table with encrypted values, found in the models (new ``*_enc`` columns are included)."""
    _load_models()
    targets = []
    for table in Base.metadata.sorted_tables:
        cols = tuple(c.name for c in table.columns if c.name.endswith("_enc") and isinstance(c.type, LargeBinary))
        if cols:
            targets.append(Target(table, cols))
        elif table.name == "outbox" and isinstance(table.c.payload.type, JSON):
            targets.append(Target(table, json_column="payload"))
    return targets


def _key_byte(col: Any) -> Any:
    # The key id is the second byte of a ciphertext; substr() takes bytes of a BLOB (SQLite) or bytea (PostgreSQL).
    # Literal positions (not bound parameters), so that PostgreSQL sees one expression in SELECT and GROUP BY.
    return func.substr(col, literal_column("2"), literal_column("1"), type_=LargeBinary)


def _stale(target: Target, key_id: int) -> Any:
    """The rows of ``target`` with a value not under ``key_id``."""
    if target.json_column is not None:
        return cast(target.table.c[target.json_column], Text).like(f'%"{JSON_FIELD}"%')
    kid = literal(bytes([key_id]), LargeBinary)
    return or_(*(and_(target.table.c[n].is_not(None), _key_byte(target.table.c[n]) != kid) for n in target.columns))


def _json_blob(payload: Any) -> bytes | None:
    if not isinstance(payload, dict) or not isinstance(payload.get(JSON_FIELD), str):
        return None
    try:
        return base64.b64decode(payload[JSON_FIELD], validate=True)
    except binascii.Error:
        return None


def _label(target: Target, column: str) -> str:
    return f"{target.table.name}.{column}"


# ---- census: which key encrypted what ------------------------------------------------------------------

def key_census(s: Session) -> dict[str, dict[int, int]]:
    """``{"<table>.<column>": {key id: number of values}}`` over every encrypted value."""
    out: dict[str, dict[int, int]] = {}
    for t in encrypted_targets():
        if t.json_column is not None:
            counts: Counter[int] = Counter()
            for blob in _json_blobs(s, t):
                counts[blob[1] if len(blob) > 1 else 0] += 1
            out[_label(t, f"{t.json_column}.{JSON_FIELD}")] = dict(counts)
            continue
        for name in t.columns:
            col = t.table.c[name]
            rows = s.execute(select(_key_byte(col), func.count()).where(col.is_not(None)).group_by(_key_byte(col)))
            out[_label(t, name)] = {(bytes(k)[0] if k else 0): int(n) for k, n in rows}
    return out


def _json_blobs(s: Session, t: Target) -> Iterator[bytes]:
    assert t.json_column is not None
    col = t.table.c[t.json_column]
    for (payload,) in s.execute(select(col).where(cast(col, Text).like(f'%"{JSON_FIELD}"%'))):
        blob = _json_blob(payload)
        if blob is not None:
            yield blob


def keys_status(c: Container) -> dict[str, Any]:
    """What each configured key still encrypts, and whether the old keys are still needed."""
    with c.uow(write=False) as s:
        census = key_census(s)
    in_use = sorted({kid for counts in census.values() for kid, n in counts.items() if n})
    old = sorted(c.cipher.key_ids - {c.cipher.key_id})
    return {"current_key_id": c.cipher.key_id, "old_key_ids": old, "key_ids_in_use": in_use,
            "values": {col: {str(k): n for k, n in sorted(counts.items())} for col, counts in census.items()},
            "old_keys_needed": sorted(set(in_use) - {c.cipher.key_id}),
            "hmac_key": "explicit" if c.settings.pii_hmac_key else "derived from key 1"}


# ---- preflight -------------------------------------------------------------------------------------------

def _sample(s: Session, t: Target, name: str, kid: int) -> bytes | None:
    col = t.table.c[name]
    return s.scalar(select(col).where(col.is_not(None), _key_byte(col) == literal(bytes([kid]), LargeBinary))
                    .order_by(t.table.c.id).limit(1))


def _preflight(s: Session, cipher: PiiCipher, census: dict[str, dict[int, int]]) -> None:
    """Refuse (``BadInput``) unless every key id in use has a configured key that opens it, and the
    look-up key reproduces the stored hashes."""
    in_use = {kid for counts in census.values() for kid, n in counts.items() if n}
    missing = sorted(in_use - cipher.key_ids)
    if missing:
        where = ", ".join(f"{col} ({counts[k]} under key {k})" for col, counts in census.items()
                          for k in missing if counts.get(k))
        hint = "; ".join(f"add {k}:<base64 of that key> to COLLECTGUARD_PII_OLD_KEYS" if k else
                         "a value is no ciphertext" for k in missing)
        raise BadInput(f"personal data is encrypted under key id(s) {', '.join(map(str, missing))}, which "
                       f"are not configured: {where}; {hint}", field="COLLECTGUARD_PII_OLD_KEYS")
    checked: set[int] = set()
    for t in encrypted_targets():
        for kid in sorted(in_use - checked):
            blob: bytes | None = None
            where = ""
            if t.json_column is not None:
                blob = next((b for b in _json_blobs(s, t) if len(b) > 1 and b[1] == kid), None)
                where = _label(t, f"{t.json_column}.{JSON_FIELD}")
            else:
                for name in t.columns:
                    blob = _sample(s, t, name, kid)
                    if blob is not None:
                        where = _label(t, name)
                        break
            if blob is None:
                continue
            try:
                cipher.decrypt(blob)
            except PiiKeyError:
                which = ("COLLECTGUARD_PII_KEY (the current key, id {k}): values under id {k} predate it, so a "
                         "new key needs a new COLLECTGUARD_PII_KEY_ID" if kid == cipher.key_id else
                         "the key with id {k} in COLLECTGUARD_PII_OLD_KEYS")
                raise BadInput(f"wrong key: {which.format(k=kid)} does not decrypt {where}",
                               field="COLLECTGUARD_PII_KEY" if kid == cipher.key_id else
                               "COLLECTGUARD_PII_OLD_KEYS") from None
            except ValueError:
                raise BadInput(f"{where} holds a value that is no ciphertext", field=where) from None
            checked.add(kid)
    _check_lookup_key(s, cipher)


def _check_lookup_key(s: Session, cipher: PiiCipher) -> None:
    sample: list[tuple[bytes, str]] = []
    for model in (Borrower, Contact):
        sample += [(blob, mac) for blob, mac in s.execute(
            select(model.phone_enc, model.phone_hmac).where(model.phone_hmac != ERASED).order_by(model.id).limit(5))]
    if not sample:
        return
    def matches(blob: bytes, mac: str) -> bool:
        try:
            return cipher.lookup_hash(cipher.decrypt(blob)) == mac
        except ValueError:
            return False

    if not any(matches(blob, mac) for blob, mac in sample):
        raise BadInput("the look-up key does not reproduce the stored phone hashes: set COLLECTGUARD_PII_HMAC_KEY "
                       "to the key they were made with (or keep key 1 in COLLECTGUARD_PII_OLD_KEYS)",
                       field="COLLECTGUARD_PII_HMAC_KEY")


# ---- the rotation --------------------------------------------------------------------------------------

def _batch(s: Session, t: Target, cipher: PiiCipher, after: int, size: int) -> tuple[int | None, int, int, int]:
    """Re-encrypt one batch of ``t`` after id ``after``: (last id or None, rows seen, rows changed, values changed)."""
    pk = t.table.c.id
    cols = [t.table.c[n] for n in (t.columns or (t.json_column or "",))]
    q = select(pk, *cols).where(pk > after, _stale(t, cipher.key_id)).order_by(pk).limit(size)
    if s.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()  # no concurrent writer changes a row between our read and our write
    rows = s.execute(q).all()
    if not rows:
        return None, 0, 0, 0
    updates, values = [], 0
    names = [c.name for c in cols]
    for row in rows:
        new: dict[str, Any] = {}
        for name, value in zip(names, row[1:], strict=True):
            try:
                if t.json_column is not None:
                    blob = _json_blob(value)
                    if blob is not None and not cipher.is_current(blob):
                        new[name] = {**value, JSON_FIELD: base64.b64encode(cipher.reencrypt(blob)).decode("ascii")}
                elif value is not None and not cipher.is_current(value):
                    new[name] = cipher.reencrypt(value)
            except ValueError as exc:  # the batch rolls back; what earlier batches did stays done
                raise BadInput(f"{t.table.name} id {row[0]}, {name}: {exc}", field=f"{t.table.name}.{name}") from None
        if new:
            values += len(new)
            updates.append({"b_id": row[0], **{f"b_{n}": new.get(n, v) for n, v in zip(names, row[1:], strict=True)}})
    if updates:
        stmt = update(t.table).where(pk == bindparam("b_id")).values({n: bindparam(f"b_{n}") for n in names})
        s.execute(stmt, updates)
    return int(rows[-1][0]), len(rows), len(updates), values


def keys_rotate(c: Container, *, batch_size: int = DEFAULT_BATCH, dry_run: bool = False, actor: str = "cli",
                progress: Progress = _quiet) -> dict[str, Any]:
    """Re-encrypt every value not under the current key; resumable, idempotent, one audit record with counts.

    Returns the key ids, rows and values re-encrypted per table, and which old keys are still needed.
    """
    if not 1 <= batch_size <= 100_000:
        raise BadInput("the batch size is 1-100000", field="batch_size")
    cipher = c.cipher
    with c.uow(write=False) as s:
        census = key_census(s)
        _preflight(s, cipher, census)
        todo = {t.table.name: int(s.scalar(select(func.count()).select_from(t.table)
                                           .where(_stale(t, cipher.key_id))) or 0) for t in encrypted_targets()}
    from_ids = sorted({k for counts in census.values() for k, n in counts.items() if n and k != cipher.key_id})
    result: dict[str, Any] = {"key_id": cipher.key_id, "from_key_ids": from_ids, "dry_run": dry_run}
    if dry_run:
        return {**result, "rows": todo, "values": sum(n for counts in census.values()
                                                       for k, n in counts.items() if k != cipher.key_id)}
    total = sum(todo.values())
    advance = progress(f"re-encrypting personal data under key {cipher.key_id}", total)
    rows: dict[str, int] = {}
    values = seen = 0
    for t in encrypted_targets():
        after, rows[t.table.name] = 0, 0
        while True:
            with c.uow() as s:  # one transaction per batch: an interrupted run keeps what it did
                last, n_seen, changed, n_values = _batch(s, t, cipher, after, batch_size)
            if last is None:
                break
            after, rows[t.table.name], values = last, rows[t.table.name] + changed, values + n_values
            seen += n_seen
            advance(n_seen)
    if seen < total:  # rows changed under us (e.g. erased by retention): let the bar finish
        advance(total - seen)
    with c.uow(write=values > 0) as s:
        left = key_census(s)
        needed = sorted({k for counts in left.values() for k, n in counts.items() if n and k != cipher.key_id})
        if values:
            audit_append(s, tenant_id=None, actor=actor, action="pii.keys_rotate", subject=f"pii_key:{cipher.key_id}",
                         payload={"key_id": cipher.key_id, "from_key_ids": from_ids, "rows": rows, "values": values,
                                  "old_keys_still_needed": needed, "lookup_hashes": "unchanged"},
                         now=c.clock())
    return {**result, "rows": rows, "values": values, "old_keys_still_needed": needed}
