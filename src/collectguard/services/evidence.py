"""``audit export``: the evidence bundle about one borrower, verifiable offline.

The export is itself a PII access, so it is audited first, in the same transaction; then every
chain involved gets a signed checkpoint at its head, so that each exported record is anchored by a
signature. The chain proof of a record at seq s is the run of records s..k up to the next signed
checkpoint k, in digest form (header + payload_sha256, no payload): a third party recomputes the
hashes forward to the signature without seeing other people's payloads.

Bundle layout (``manifest.json`` lists the SHA-256 of every other file, ``manifest.sig`` signs it):
``report.html``, ``data/*.json``, ``audit/records.json`` (the borrower's records, with payloads),
``audit/segments.json``, ``audit/checkpoints.json``, ``audit/public_keys.json``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from collectguard.adapters.db.models import AuditRecord
from collectguard.adapters.db.models_audit import AuditCheckpoint
from collectguard.errors import BadInput
from collectguard.services.audit import audit_append
from collectguard.services.audit_borrower import borrower_audit_records, borrower_file, borrower_find
from collectguard.services.audit_proof import hash_time, payload_digest
from collectguard.services.audit_signing import (
    AuditSigner,
    audit_signer,
    checkpoint_dict,
    checkpoint_sign_due,
)
from collectguard.services.evidence_data import bundle_data
from collectguard.services.evidence_report import render_report
from collectguard.services.evidence_verify import MANIFEST_DOMAIN

if TYPE_CHECKING:
    from collectguard.bootstrap import Container

FORMAT = "collectguard-evidence/1"


def record_dict(rec: AuditRecord, *, with_payload: bool) -> dict[str, Any]:
    """An audit record as exported: full (with payload) or digest-only (payload_sha256)."""
    d: dict[str, Any] = {
        "chain": rec.chain,
        "seq": rec.seq,
        "time": hash_time(rec.time),
        "tenant": rec.tenant_id,
        "actor": rec.actor,
        "action": rec.action,
        "subject": rec.subject,
        "prev_hash": rec.prev_hash,
        "hash": rec.hash,
    }
    if with_payload:
        d["payload"] = rec.payload
    else:
        d["payload_sha256"] = payload_digest(rec.payload)
    return d


def _segments(
    session: Session, records: list[AuditRecord]
) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    """Per chain, the runs from each record to the next signed checkpoint, and those checkpoints."""
    by_chain: dict[str, list[int]] = {}
    for rec in records:
        by_chain.setdefault(rec.chain, []).append(rec.seq)
    segments: dict[str, list[dict[str, Any]]] = {}
    used: list[dict[str, Any]] = []
    for chain, seqs in sorted(by_chain.items()):
        cps = {cp.seq: cp for cp in session.scalars(select(AuditCheckpoint).where(AuditCheckpoint.chain == chain))}
        ranges: list[list[int]] = []
        for s in sorted(seqs):
            k = min(q for q in cps if q >= s)  # exists: the export signed every head
            if ranges and s <= ranges[-1][1]:
                ranges[-1][1] = max(ranges[-1][1], k)
            else:
                ranges.append([s, k])
        rows: list[dict[str, Any]] = []
        for lo, hi in ranges:
            q = (
                select(AuditRecord)
                .where(AuditRecord.chain == chain, AuditRecord.seq >= lo, AuditRecord.seq <= hi)
                .order_by(AuditRecord.seq)
            )
            rows += [record_dict(r, with_payload=False) for r in session.scalars(q)]
            used.append(checkpoint_dict(cps[hi]))
        segments[chain] = rows
    return segments, used


def _json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, indent=1, sort_keys=True, default=str).encode("utf-8")


def write_bundle(out: Path, files: dict[str, bytes], *, signer: AuditSigner, meta: dict[str, Any]) -> dict[str, Any]:
    """Write the zip: the files, a manifest of their SHA-256, and the manifest's signature."""
    manifest = {
        "format": FORMAT,
        **meta,
        "key_id": signer.key_id,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    mbytes = _json(manifest)
    sig = {
        "key_id": signer.key_id,
        "public_key": signer.public_key,
        "signature": signer.sign(MANIFEST_DOMAIN + mbytes),
    }
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("manifest.json", mbytes)
            z.writestr("manifest.sig", _json(sig))
            for name, data in sorted(files.items()):
                z.writestr(name, data)
    except OSError as exc:  # the transaction (and its audit record) rolls back with it
        raise BadInput(f"cannot write {out}: {exc.strerror or exc}", field="--out") from exc
    return manifest


def audit_export(
    c: Container, *, borrower_ext_id: str, tenant_code: str | None, out: Path, actor: str, now: dt.datetime
) -> dict[str, Any]:
    """Export the evidence bundle about one borrower to ``out`` (a zip); returns a summary."""
    signer = audit_signer(c.settings)
    with c.uow() as s:
        tenant, b = borrower_find(s, ext_id=borrower_ext_id, tenant_code=tenant_code or c.settings.default_tenant)
        audit_append(
            s,
            tenant_id=tenant.id,
            actor=actor,
            action="evidence.export",
            subject=f"borrower:{b.id}",
            payload={"borrower_id": b.id, "purpose": "evidence_export", "file": out.name},
            now=now,
        )
        f = borrower_file(s, b.id)
        records = borrower_audit_records(s, f)
        checkpoint_sign_due(s, signer, now=now, chains={r.chain for r in records})
        segments, checkpoints = _segments(s, records)
        data = bundle_data(f, c.cipher)
        full = [record_dict(r, with_payload=True) for r in records]
        files = {f"data/{name}.json": _json(rows) for name, rows in data.items()}
        files["audit/records.json"] = _json(full)
        files["audit/segments.json"] = _json(segments)
        files["audit/checkpoints.json"] = _json(checkpoints)
        files["audit/public_keys.json"] = _json({signer.key_id: signer.public_key})
        files["report.html"] = render_report(
            f, c.cipher, data=data, records=full, checkpoints=checkpoints, key_id=signer.key_id, now=now
        ).encode("utf-8")
        meta = {"created_at": hash_time(now), "tenant": tenant.code, "borrower": b.ext_id}
        manifest = write_bundle(out, files, signer=signer, meta=meta)
    return {
        "out": str(out),
        "borrower": b.ext_id,
        "tenant": tenant.code,
        "records": len(full),
        "checkpoints": len(checkpoints),
        "files": len(manifest["files"]) + 2,
        "key_id": signer.key_id,
    }
