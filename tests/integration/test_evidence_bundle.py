"""The evidence bundle: complete, masked, audited, and verifiable offline; any tampering fails it."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from _audit_seed import CONTACT_NAME, CONTACT_PHONE, NAME, noise, seed_borrower
from sqlalchemy import select

from collectguard.adapters.db.models import AuditRecord
from collectguard.errors import IntegrityFault, NotFound
from collectguard.services.audit_signing import AuditSigner, audit_signer
from collectguard.services.audit_verify import audit_verify
from collectguard.services.evidence import audit_export
from collectguard.services.evidence_verify import MANIFEST_DOMAIN, verify_bundle
from conftest import FIXED_NOW, create_database, make_container


def _export(c, out: Path, ext_id: str = "B1") -> dict:
    return audit_export(c, borrower_ext_id=ext_id, tenant_code=None, out=out, actor="user:auditor", now=FIXED_NOW)


@pytest.fixture
def bundle(container, tmp_path) -> Path:
    noise(container, n=3)
    seed_borrower(container)
    noise(container, n=4)
    seed_borrower(container, ext_id="B2")
    out = tmp_path / "b1.zip"
    summary = _export(container, out)
    assert summary["records"] == 6 and summary["borrower"] == "B1"  # 5 about B1, and the export itself
    return out


def test_a_bundle_verifies_offline(bundle, container):
    report = verify_bundle(bundle, key_id=audit_signer(container.settings).key_id)
    assert report["status"] == "valid" and report["records"] == 6 and report["checkpoints"] >= 1
    with zipfile.ZipFile(bundle) as z:
        names = set(z.namelist())
        records = json.loads(z.read("audit/records.json"))
        segments = json.loads(z.read("audit/segments.json"))
    assert {
        "manifest.json",
        "manifest.sig",
        "report.html",
        "data/decisions.json",
        "data/contact_attempts.json",
        "data/consents.json",
        "data/outcomes.json",
        "data/complaints.json",
        "audit/checkpoints.json",
        "audit/public_keys.json",
    } <= names
    subjects = {r["subject"] for r in records}
    assert "guard" in subjects  # found by "borrower_id" in the payload
    assert not any(r["subject"].startswith("other:") for r in records)
    # Other people's records are in the proof only as digests, never with their payloads.
    rows = [r for rs in segments.values() for r in rs]
    assert any(r["subject"].startswith("other:") for r in rows) and not any("payload" in r for r in rows)


def test_the_report_is_bilingual_and_masks_names_and_numbers(bundle):
    with zipfile.ZipFile(bundle) as z:
        html = z.read("report.html").decode()
        data = "".join(z.read(n).decode() for n in z.namelist() if n.startswith("data/"))
    for secret in (NAME, CONTACT_NAME, PHONE_DIGITS := "13800001234", CONTACT_PHONE[3:]):
        assert secret not in html and secret not in data, secret
    assert "张**" in html and "138****1234" in html and PHONE_DIGITS not in html
    assert "联系记录" in html and "Contact attempts" in html and "<script" not in html


def test_the_export_is_itself_audited(bundle, container):
    with container.uow(write=False) as s:
        rec = s.scalars(select(AuditRecord).where(AuditRecord.action == "evidence.export")).one()
    assert rec.actor == "user:auditor" and rec.subject.startswith("borrower:")
    assert audit_verify(container)["status"] == "intact"


def test_an_unknown_borrower_is_not_found(container, tmp_path):
    with pytest.raises(NotFound):
        _export(container, tmp_path / "x.zip", ext_id="nobody")


def _rewrite(
    src: Path, dst: Path, name: str, mutate, *, signer: AuditSigner | None = None, fix_manifest: bool = False
) -> Path:
    """Copy the bundle with one file changed; optionally re-hash (and re-sign) the manifest."""
    with zipfile.ZipFile(src) as z:
        files = {n: z.read(n) for n in z.namelist()}
    files[name] = mutate(files[name])
    if fix_manifest or signer:
        manifest = json.loads(files["manifest.json"])
        manifest["files"][name] = hashlib.sha256(files[name]).hexdigest()
        files["manifest.json"] = json.dumps(manifest).encode()
    if signer:  # a full forgery: the checkpoints are re-signed with the forger's key as well
        from collectguard.services.audit_proof import checkpoint_message

        cps = json.loads(files["audit/checkpoints.json"])
        for cp in cps:
            cp["key_id"], cp["public_key"] = signer.key_id, signer.public_key
            cp["signature"] = signer.sign(
                checkpoint_message(
                    chain=cp["chain"], seq=cp["seq"], hash=cp["hash"], time=cp["time"], key_id=cp["key_id"]
                )
            )
        files["audit/checkpoints.json"] = json.dumps(cps).encode()
        manifest = json.loads(files["manifest.json"])
        manifest["files"]["audit/checkpoints.json"] = hashlib.sha256(files["audit/checkpoints.json"]).hexdigest()
        files["manifest.json"] = json.dumps(manifest).encode()
        files["manifest.sig"] = json.dumps(
            {
                "key_id": signer.key_id,
                "public_key": signer.public_key,
                "signature": signer.sign(MANIFEST_DOMAIN + files["manifest.json"]),
            }
        ).encode()
    with zipfile.ZipFile(dst, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
    return dst


def _edit_json(fn):
    return lambda raw: json.dumps(fn(json.loads(raw)), ensure_ascii=False).encode()


def _set_payload(records):
    records[0]["payload"] = records[0]["payload"].replace("allow", "deny").replace("张三丰", "某人")
    return records


def test_a_tampered_file_fails_naming_it(bundle, tmp_path):
    bad = _rewrite(bundle, tmp_path / "bad.zip", "data/decisions.json", lambda b: b.replace(b"allow", b"deny"))
    with pytest.raises(IntegrityFault, match=r"data/decisions\.json does not match"):
        verify_bundle(bad)


def test_a_tampered_manifest_fails_its_signature(bundle, tmp_path):
    bad = _rewrite(bundle, tmp_path / "bad.zip", "audit/records.json", _edit_json(_set_payload), fix_manifest=True)
    with pytest.raises(IntegrityFault, match="manifest signature invalid"):
        verify_bundle(bad)


def test_a_resigned_bundle_fails_on_the_chain_or_the_pinned_key(bundle, tmp_path, container):
    rogue = AuditSigner(b"\x07" * 32)
    bad = _rewrite(bundle, tmp_path / "bad.zip", "audit/records.json", _edit_json(_set_payload), signer=rogue)
    with pytest.raises(IntegrityFault, match="expected"):
        verify_bundle(bad, key_id=audit_signer(container.settings).key_id)
    with pytest.raises(IntegrityFault, match="record differs from the chain"):
        verify_bundle(bad)  # unpinned: every signature is the forger's, but the payload digest gives it away
    half = _rewrite(bundle, tmp_path / "half.zip", "audit/records.json", _edit_json(_set_payload), fix_manifest=True)
    manifest_only = _rewrite(half, tmp_path / "half2.zip", "manifest.sig", lambda b: b)
    with pytest.raises(IntegrityFault, match="manifest signature invalid"):
        verify_bundle(manifest_only)


def test_a_tampered_segment_is_located(bundle, tmp_path):
    def bump(segments):
        chain = next(iter(segments))
        segments[chain][1]["actor"] = "user:mallory"
        return segments

    with zipfile.ZipFile(bundle) as z:
        seq = json.loads(z.read("audit/segments.json"))
    chain = next(iter(seq))
    target = seq[chain][1]["seq"]
    rogue = AuditSigner(b"\x07" * 32)
    bad = _rewrite(bundle, tmp_path / "bad.zip", "audit/segments.json", _edit_json(bump), signer=rogue)
    with pytest.raises(IntegrityFault, match=f"chain {chain} seq {target}: hash mismatch"):
        verify_bundle(bad)


def test_not_a_zip_is_bad_input(tmp_path):
    from collectguard.errors import BadInput

    p = tmp_path / "x.zip"
    p.write_text("no")
    with pytest.raises(BadInput):
        verify_bundle(p)


def test_bundles_verify_after_the_database_is_gone(database, tmp_path_factory, tmp_path):
    db = create_database(database.backend, tmp_path_factory)
    c = make_container(db)
    seed_borrower(c)
    noise(c, n=2)
    out = tmp_path / "b.zip"
    _export(c, out)
    key_id = audit_signer(c.settings).key_id
    db.close()  # the database is dropped (PostgreSQL) or its engine gone (SQLite)
    assert verify_bundle(out, key_id=key_id)["status"] == "valid"


def _doc_snippet(tmp_path: Path) -> Path:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "audit.md").read_text("utf-8")
    code = doc.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(code.splitlines()) <= 40
    script = tmp_path / "verify_bundle.py"
    script.write_text(code, "utf-8")
    return script


def test_the_standalone_snippet_in_the_docs_verifies_and_rejects(bundle, tmp_path, container):
    import subprocess
    import sys

    script = _doc_snippet(tmp_path)
    key_id = audit_signer(container.settings).key_id
    ok = subprocess.run([sys.executable, str(script), str(bundle), key_id], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.strip() == "valid", ok.stderr
    rogue = AuditSigner(b"\x07" * 32)
    forged = _rewrite(bundle, tmp_path / "bad.zip", "audit/records.json", _edit_json(_set_payload), signer=rogue)
    for args in ([str(forged), key_id], [str(forged), rogue.key_id]):
        bad = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True)
        assert bad.returncode != 0 and "AssertionError" in bad.stderr
