"""PII key rotation (``services/keyrotation``), both backends: every encrypted column re-encrypted, readable with
the new key alone, look-up hashes unchanged, resumable after an interruption, a rerun a no-op, wrong keys refused."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
from sqlalchemy import LargeBinary, func, select

from collectguard.adapters.crypto import PiiCipher, derive_hmac_key, key_id_of
from collectguard.adapters.db.models import AuditRecord, Base, Borrower, Contact
from collectguard.errors import BadInput
from collectguard.services import keyrotation
from collectguard.services.demo import demo_seed
from collectguard.services.keyrotation import encrypted_targets, key_census, keys_rotate, keys_status
from collectguard.services.outbox import email_payload, outbox_enqueue
from collectguard.services.qa import qa_results_store, transcripts_parse

K2, K3 = os.urandom(32), os.urandom(32)
TRANSCRIPTS = Path(__file__).parents[1] / "data" / "transcripts" / "all.jsonl"


def plaintexts(c) -> dict[tuple[str, int, str], str]:
    """Every encrypted value, decrypted with ``c``'s cipher: {(table, id, column): text}."""
    out = {}
    with c.uow(write=False) as s:
        for t in encrypted_targets():
            cols = t.columns or (t.json_column,)
            for row in s.execute(select(t.table.c.id, *(t.table.c[n] for n in cols))):
                for name, value in zip(cols, row[1:], strict=True):
                    if t.json_column is not None:
                        value = keyrotation._json_blob(value)
                    if value is not None:
                        out[(t.table.name, row[0], name)] = c.cipher.decrypt(value)
    return out


def with_cipher(c, key: bytes, key_id: int, old: dict[int, bytes] | None = None, hmac_key: bytes | None = None):
    return dataclasses.replace(c, cipher=PiiCipher(key, key_id=key_id, old_keys=old, hmac_key=hmac_key))


@pytest.fixture
def seeded(container):
    """A small demo portfolio (key 1, derived dev key) plus a QA transcript and an e-mail in the outbox."""
    demo_seed(container, loans=40, seed=5)
    with container.uow() as s:
        tenant_id = s.scalar(select(Borrower.tenant_id).limit(1))
        transcripts, _many = transcripts_parse(json.loads(TRANSCRIPTS.read_text(encoding="utf-8").splitlines()[0]))
        qa_results_store(s, cipher=container.cipher, tenant_id=tenant_id, actor="test", now=container.clock(),
                         transcripts=transcripts)
        outbox_enqueue(s, kind="email", now=container.clock(), tenant_id=tenant_id,
                       payload=email_payload(container.cipher, to="wang.jianguo@example.cn", subject="s", body="b"))
    return container


def audits(c) -> list[AuditRecord]:
    with c.uow(write=False) as s:
        return list(s.scalars(select(AuditRecord).where(AuditRecord.action == "pii.keys_rotate")))


def test_every_binary_column_is_an_encrypted_column_the_rotation_knows():
    found = {(t.table.name, n) for t in encrypted_targets() for n in t.columns}
    assert found >= {("borrower", "name_enc"), ("borrower", "phone_enc"), ("borrower", "id_number_enc"),
                     ("contact", "name_enc"), ("contact", "phone_enc"), ("qa_result", "transcript_enc")}
    assert any(t.table.name == "outbox" and t.json_column == "payload" for t in encrypted_targets())
    binary = {(t.name, c.name) for t in Base.metadata.sorted_tables for c in t.columns
              if isinstance(c.type, LargeBinary)}
    assert binary == found  # a binary column that is not *_enc would be personal data nobody rotates


def test_rotation_re_encrypts_everything_and_the_new_key_alone_reads_it(seeded):
    before = plaintexts(seeded)
    assert {k[0] for k in before} == {"borrower", "contact", "qa_result", "outbox"}
    k1 = seeded.settings.pii_key_bytes()
    rotating = with_cipher(seeded, K2, 2, old={1: k1})
    assert keys_status(rotating)["old_keys_needed"] == [1]

    dry = keys_rotate(rotating, dry_run=True)
    assert dry["values"] == len(before) and dry["from_key_ids"] == [1] and not audits(seeded)

    ticks: list[int] = []
    result = keys_rotate(rotating, batch_size=7, progress=lambda d, total: ticks.append(total) or ticks.append)
    assert result["values"] == len(before) and result["old_keys_still_needed"] == []
    assert result["rows"]["qa_result"] == 1 and result["rows"]["outbox"] == 1
    assert ticks[0] == sum(result["rows"].values()) == sum(ticks[1:])  # the bar ends full

    # Only key 2 now: the old key is gone from the configuration, the look-up key pinned.
    new_only = with_cipher(seeded, K2, 2, hmac_key=derive_hmac_key(k1))
    assert plaintexts(new_only) == before
    with seeded.uow(write=False) as s:
        census = key_census(s)
        assert {k for counts in census.values() for k in counts} == {2}
        for b in s.scalars(select(Borrower).limit(20)):
            assert new_only.cipher.lookup_hash(new_only.cipher.decrypt(b.phone_enc)) == b.phone_hmac
        for ct in s.scalars(select(Contact).limit(20)):
            assert new_only.cipher.lookup_hash(new_only.cipher.decrypt(ct.phone_enc)) == ct.phone_hmac
    with pytest.raises(ValueError, match="no key with id 1"):
        PiiCipher(K2, key_id=2, hmac_key=b"h" * 32).decrypt(with_cipher(seeded, k1, 1).cipher.encrypt("x"))

    [record] = audits(seeded)
    payload = json.loads(record.payload)
    assert payload["key_id"] == 2 and payload["from_key_ids"] == [1] and payload["values"] == len(before)
    assert payload["rows"]["borrower"] > 0 and payload["lookup_hashes"] == "unchanged"

    again = keys_rotate(new_only)
    assert again["values"] == 0 and sum(again["rows"].values()) == 0
    assert len(audits(seeded)) == 1  # a rerun is a no-op: nothing changed, nothing audited

    # A second rotation, 2 -> 3, with the look-up key now explicit.
    third = with_cipher(seeded, K3, 3, old={2: K2}, hmac_key=derive_hmac_key(k1))
    assert keys_rotate(third)["values"] == len(before)
    assert plaintexts(with_cipher(seeded, K3, 3, hmac_key=derive_hmac_key(k1))) == before


def test_an_interrupted_rotation_resumes_where_it_stopped(seeded, monkeypatch):
    before = plaintexts(seeded)
    k1 = seeded.settings.pii_key_bytes()
    rotating = with_cipher(seeded, K2, 2, old={1: k1})
    real, calls = keyrotation._batch, {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        out = real(*args, **kwargs)
        if calls["n"] == 2:  # the second batch has written its rows when the process dies, before the commit
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(keyrotation, "_batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        keys_rotate(rotating, batch_size=5)
    monkeypatch.setattr(keyrotation, "_batch", real)
    with seeded.uow(write=False) as s:
        census = key_census(s)
        done = s.scalar(select(func.count()).select_from(Borrower)
                        .where(func.substr(Borrower.name_enc, 2, 1, type_=LargeBinary) == b"\x02"))
    assert done == 5  # the first batch committed, the second rolled back as a whole
    done_values = sum(counts.get(2, 0) for counts in census.values())
    assert 10 <= done_values <= 15 and not audits(seeded)
    assert plaintexts(rotating) == before  # mixed keys read fine meanwhile

    result = keys_rotate(rotating, batch_size=5)
    assert result["values"] == len(before) - done_values  # nothing re-encrypted twice
    assert result["rows"]["borrower"] == len({i for (t, i, _c) in before if t == "borrower"}) - done
    assert keys_status(rotating)["old_keys_needed"] == []
    assert plaintexts(with_cipher(seeded, K2, 2, hmac_key=derive_hmac_key(k1))) == before


def test_wrong_or_missing_keys_are_refused_before_anything_changes(seeded):
    k1 = seeded.settings.pii_key_bytes()
    hmac1 = derive_hmac_key(k1)
    cases = [
        (with_cipher(seeded, K2, 2, hmac_key=hmac1), "key id\\(s\\) 1, which are not configured"),
        (with_cipher(seeded, K2, 2, old={1: K3}), "wrong key: the key with id 1"),
        (with_cipher(seeded, K2, 1), "a new key needs a new COLLECTGUARD_PII_KEY_ID"),
        (with_cipher(seeded, K2, 2, old={1: k1}, hmac_key=K3), "look-up key does not reproduce"),
    ]
    for c, why in cases:
        with pytest.raises(BadInput, match=why):
            keys_rotate(c)
    with seeded.uow(write=False) as s:
        assert {k for counts in key_census(s).values() for k in counts} == {1}
    assert not audits(seeded)
    with pytest.raises(BadInput, match="batch size"):
        keys_rotate(seeded, batch_size=0)


def test_a_ciphertext_names_its_key():
    c = PiiCipher(K2, key_id=7, old_keys={1: K3})
    blob = c.encrypt("王建国")
    assert key_id_of(blob) == 7 and c.is_current(blob) and c.reencrypt(blob) is blob
    old = PiiCipher(K3).encrypt("王建国")
    assert key_id_of(old) == 1 and key_id_of(c.reencrypt(old)) == 7 and c.decrypt(c.reencrypt(old)) == "王建国"
    with pytest.raises(ValueError, match="does not open"):
        PiiCipher(K2).decrypt(old)  # key id 1, the wrong bytes: a clear error, not a bare InvalidTag
    with pytest.raises(ValueError, match="look-up"):
        PiiCipher(K2, key_id=2)  # key 1 unknown and no look-up key: refuse rather than hash differently
    assert PiiCipher(K3).lookup_hash("+8613800001001") == PiiCipher(K2, key_id=2, old_keys={1: K3}).lookup_hash(
        "+8613800001001")  # the look-up key follows key 1, not the current key
