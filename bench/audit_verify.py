"""Benchmark ``audit verify``: records per second over a chain of N records; prints JSON.

    .venv/bin/python bench/audit_verify.py [--records 1000000] [--chains 1] [--workers N]

SQLite always (a temporary file); PostgreSQL too when COLLECTGUARD_TEST_POSTGRES_URL is set (a
temporary database, dropped afterwards). Records are bulk-inserted with correct hashes (the fill is
not what is measured), one signed checkpoint every 1000 records, payloads of ~120 bytes with
Chinese text like the real ones.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from collectguard.adapters.crypto import PiiCipher
from collectguard.adapters.db.engine import make_engine, normalise_url, session_factory, upgrade
from collectguard.adapters.db.models import AuditRecord
from collectguard.adapters.db.models_audit import AuditCheckpoint
from collectguard.bootstrap import Container
from collectguard.services.audit import CHECKPOINT_EVERY
from collectguard.services.audit_proof import GENESIS, canonical_json, hash_time, payload_digest, record_hash
from collectguard.services.audit_signing import audit_signer
from collectguard.services.audit_verify import audit_verify_report
from collectguard.settings import Settings

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def fill(engine, settings: Settings, records: int, chains: int) -> None:  # type: ignore[no-untyped-def]
    signer = audit_signer(settings)
    per_chain = records // chains
    with engine.begin() as conn:
        for ci in range(chains):
            chain, prev, batch, cps = f"t1.s{ci:02d}", GENESIS, [], []
            for seq in range(1, per_chain + 1):
                t = T0 + dt.timedelta(milliseconds=seq * 37)
                payload = canonical_json(
                    {
                        "borrower_id": seq % 5000,
                        "channel": "call",
                        "verdict": "allow",
                        "message": "您好，这里是某某消费金融，提醒您按时还款。",
                        "attempt": seq,
                    }
                )
                h = record_hash(
                    prev,
                    chain=chain,
                    seq=seq,
                    time=hash_time(t),
                    tenant_id=1,
                    actor="user:bench",
                    action="contact_attempt.create",
                    subject=f"contact_attempt:{seq}",
                    payload_sha256=payload_digest(payload),
                )
                batch.append(
                    {
                        "chain": chain,
                        "seq": seq,
                        "time": t,
                        "tenant_id": 1,
                        "actor": "user:bench",
                        "action": "contact_attempt.create",
                        "subject": f"contact_attempt:{seq}",
                        "payload": payload,
                        "prev_hash": prev,
                        "hash": h,
                    }
                )
                if seq % CHECKPOINT_EVERY == 0:
                    cp = signer.checkpoint(chain=chain, seq=seq, hash=h, now=t, tenant_id=1)
                    cps.append(
                        {
                            k: getattr(cp, k)
                            for k in (
                                "chain",
                                "seq",
                                "hash",
                                "time",
                                "tenant_id",
                                "key_id",
                                "public_key",
                                "signature",
                            )
                        }
                    )
                prev = h
                if len(batch) >= 20_000:
                    conn.execute(insert(AuditRecord), batch)
                    batch = []
            if batch:
                conn.execute(insert(AuditRecord), batch)
            if cps:
                conn.execute(insert(AuditCheckpoint), cps)


def run(url: str, backend: str, records: int, chains: int, workers: int | None) -> dict:
    settings = Settings(database_url=url, environment="test")
    engine = make_engine(url)
    upgrade(engine)
    t = time.perf_counter()
    fill(engine, settings, records, chains)
    fill_s = time.perf_counter() - t
    c = Container(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        cipher=PiiCipher(settings.pii_key_bytes()),
    )
    cpu = time.process_time()
    serial = audit_verify_report(c, workers=1)
    cpu = time.process_time() - cpu  # this process's CPU only: robust on a shared, busy machine
    parallel = audit_verify_report(c, workers=workers)
    engine.dispose()
    assert serial["status"] == parallel["status"] == "intact", (serial, parallel)
    return {
        "backend": backend,
        "records": serial["records"],
        "chains": chains,
        "fill_seconds": round(fill_s, 1),
        "serial": {
            "seconds": serial["seconds"],
            "records_per_second": serial["records_per_second"],
            "records_per_cpu_second": int(serial["records"] / cpu) if cpu else None,
        },
        "parallel": {
            "workers": workers or os.cpu_count(),
            "seconds": parallel["seconds"],
            "records_per_second": parallel["records_per_second"],
        },
        "cpus": os.cpu_count(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--chains", type=int, default=1)
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(run(f"sqlite:///{Path(tmp) / 'bench.db'}", "sqlite", args.records, args.chains, args.workers))
    pg = os.environ.get("COLLECTGUARD_TEST_POSTGRES_URL")
    if pg:
        admin = create_engine(normalise_url(pg), isolation_level="AUTOCOMMIT")
        name = f"cg_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = make_url(normalise_url(pg)).set(database=name).render_as_string(hide_password=False)
            results.append(run(url, "postgres", args.records, args.chains, args.workers))
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    json.dump({"benchmark": "audit_verify", "results": results}, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
