"""``audit verify-bundle``: check an evidence bundle offline, without any database.

Checks, in order: every file against ``manifest.json`` (and no file unlisted), the manifest's
ed25519 signature, every checkpoint's signature, every chain segment by recomputing its hashes
forward to a signed checkpoint, and every exported record (with its payload) against its segment.
The first failure raises ``IntegrityFault`` naming the file, or the chain and seq.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

from collectguard.errors import BadInput, IntegrityFault
from collectguard.services.audit_proof import (
    checkpoint_ok,
    key_id_of,
    payload_digest,
    record_hash_of,
    signature_ok,
)

MANIFEST_DOMAIN = b"collectguard-evidence-manifest/1\n"
_HEADER = ("chain", "seq", "time", "tenant", "actor", "action", "subject", "prev_hash", "hash")


def _fault(message: str, **detail: Any) -> IntegrityFault:
    return IntegrityFault(f"evidence bundle invalid: {message}", detail=detail)


def _load(z: zipfile.ZipFile, name: str) -> Any:
    try:
        return json.loads(z.read(name))
    except KeyError as exc:
        raise _fault(f"{name} is missing", file=name) from exc
    except ValueError as exc:
        raise _fault(f"{name} is not JSON", file=name) from exc


def _check_files(z: zipfile.ZipFile, manifest: dict[str, Any]) -> None:
    listed: dict[str, str] = manifest.get("files") or {}
    present = set(z.namelist()) - {"manifest.json", "manifest.sig"}
    for name in sorted(present | set(listed)):
        if name not in listed:
            raise _fault(f"{name} is not listed in the manifest", file=name)
        if name not in present:
            raise _fault(f"{name} is listed in the manifest but missing", file=name)
        if hashlib.sha256(z.read(name)).hexdigest() != listed[name]:
            raise _fault(f"{name} does not match its SHA-256 in the manifest", file=name)


def _check_segment(
    chain: str, rows: list[dict[str, Any]], cps: dict[tuple[str, int], dict[str, Any]]
) -> dict[int, dict[str, Any]]:
    """Recompute each run of consecutive records up to its checkpoint; returns the rows by seq."""
    by_seq: dict[int, dict[str, Any]] = {}
    rows = sorted(rows, key=lambda r: r["seq"])
    for i, row in enumerate(rows):
        seq = row["seq"]
        if record_hash_of(row) != row["hash"]:
            raise _fault(f"chain {chain} seq {seq}: hash mismatch", chain=chain, seq=seq)
        if i > 0 and rows[i - 1]["seq"] == seq - 1 and row["prev_hash"] != rows[i - 1]["hash"]:
            raise _fault(f"chain {chain} seq {seq}: prev_hash does not link", chain=chain, seq=seq)
        cp = cps.get((chain, seq))
        if cp is not None and cp["hash"] != row["hash"]:
            raise _fault(f"chain {chain} seq {seq}: differs from the signed checkpoint", chain=chain, seq=seq)
        run_ends = i + 1 == len(rows) or rows[i + 1]["seq"] != seq + 1
        if run_ends and cp is None:
            raise _fault(f"chain {chain} seq {seq}: segment does not end at a signed checkpoint", chain=chain, seq=seq)
        by_seq[seq] = row
    return by_seq


def verify_bundle(path: Path, *, key_id: str | None = None) -> dict[str, Any]:
    """Verify the bundle at ``path``; ``key_id`` pins the expected signing-key fingerprint."""
    try:
        z = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BadInput(f"not a readable zip file: {exc}", field="BUNDLE") from exc
    with z:
        try:
            return _verify(z, key_id)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _fault(f"malformed content: {type(exc).__name__}: {exc}") from exc


def _verify(z: zipfile.ZipFile, key_id: str | None) -> dict[str, Any]:
    """The checks, in order; the first failure raises."""
    manifest = _load(z, "manifest.json")
    sig = _load(z, "manifest.sig")
    _check_files(z, manifest)
    if key_id_of(sig["public_key"]) != sig["key_id"] or not signature_ok(
        sig["public_key"], sig["signature"], MANIFEST_DOMAIN + z.read("manifest.json")
    ):
        raise _fault("manifest signature invalid", file="manifest.sig")
    trusted = {key_id or sig["key_id"]}
    if sig["key_id"] not in trusted:
        raise _fault(f"signed by key {sig['key_id']}, expected {key_id}", file="manifest.sig")
    cps: dict[tuple[str, int], dict[str, Any]] = {}
    for cp in _load(z, "audit/checkpoints.json"):
        where = f"checkpoint chain {cp['chain']} seq {cp['seq']}"
        if cp["key_id"] not in trusted:
            raise _fault(
                f"{where}: signed by key {cp['key_id']}, not the bundle's key",
                chain=cp["chain"],
                seq=cp["seq"],
            )
        if not checkpoint_ok(cp):
            raise _fault(f"{where}: signature invalid", chain=cp["chain"], seq=cp["seq"])
        cps[(cp["chain"], cp["seq"])] = cp
    segments = {chain: _check_segment(chain, rows, cps) for chain, rows in _load(z, "audit/segments.json").items()}
    records = _load(z, "audit/records.json")
    for rec in records:
        chain, seq = rec["chain"], rec["seq"]
        seg = segments.get(chain, {}).get(seq)
        if seg is None:
            raise _fault(f"chain {chain} seq {seq}: record not covered by a segment", chain=chain, seq=seq)
        if any(seg[k] != rec[k] for k in _HEADER) or payload_digest(rec["payload"]) != seg["payload_sha256"]:
            raise _fault(f"chain {chain} seq {seq}: record differs from the chain", chain=chain, seq=seq)
    return {
        "status": "valid",
        "borrower": manifest.get("borrower"),
        "tenant": manifest.get("tenant"),
        "records": len(records),
        "segments": sum(len(s) for s in segments.values()),
        "checkpoints": len(cps),
        "key_id": sig["key_id"],
        "files": len(manifest.get("files") or {}),
    }
