"""The PII key settings (``COLLECTGUARD_PII_KEY``, ``_KEY_ID``, ``_OLD_KEYS``, ``_HMAC_KEY``): parsed and checked at
start, so that a bad key configuration stops the process instead of the first read of a borrower."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from collectguard.adapters.crypto import derive_hmac_key
from collectguard.bootstrap import pii_cipher
from collectguard.settings import Settings

K1, K2, K3 = (bytes([n]) * 32 for n in (1, 2, 3))


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def settings(**kw: object) -> Settings:
    return Settings(environment="test", **kw)  # type: ignore[arg-type]


def test_the_default_is_one_key_and_the_look_up_key_derived_from_it():
    s = settings(pii_key=b64(K1))
    assert s.pii_keyring() == (1, K1, {}, None)
    cipher = pii_cipher(s)
    assert cipher.key_id == 1 and base64.b64decode(cipher.hmac_key_b64()) == derive_hmac_key(K1)


def test_a_rotation_configuration_reads_old_values_and_keeps_the_look_up_key():
    before = pii_cipher(settings(pii_key=b64(K1)))
    s = settings(pii_key=b64(K2), pii_key_id=2, pii_old_keys=f" 1:{b64(K1)} , 3:{b64(K3)}")
    assert s.pii_keyring() == (2, K2, {1: K1, 3: K3}, None)
    during = pii_cipher(s)
    assert during.decrypt(before.encrypt("张三")) == "张三"
    assert during.lookup_hash("+8613800138000") == before.lookup_hash("+8613800138000")
    after = pii_cipher(settings(pii_key=b64(K2), pii_key_id=2, pii_hmac_key=b64(derive_hmac_key(K1))))
    assert after.decrypt(during.encrypt("李四")) == "李四"
    assert after.lookup_hash("+8613800138000") == before.lookup_hash("+8613800138000")


@pytest.mark.parametrize(("kw", "why"), [
    ({"pii_key": "not base64!"}, "COLLECTGUARD_PII_KEY must be base64 of exactly 32 bytes"),
    ({"pii_key": b64(b"short")}, "COLLECTGUARD_PII_KEY must be base64 of exactly 32 bytes"),
    ({"pii_key": b64(K2), "pii_key_id": 0}, "greater than or equal to 1"),
    ({"pii_key": b64(K2), "pii_key_id": 2, "pii_old_keys": "1"}, "<id>:<base64>"),
    ({"pii_key": b64(K2), "pii_key_id": 2, "pii_old_keys": f"256:{b64(K1)}"}, "ids 1-255"),
    ({"pii_key": b64(K2), "pii_key_id": 2, "pii_old_keys": f"1:{b64(K1)},1:{b64(K3)}"}, "names key 1 twice"),
    ({"pii_key": b64(K2), "pii_key_id": 2, "pii_old_keys": f"2:{b64(K1)}"}, "a new key needs a new"),
    ({"pii_key": b64(K2), "pii_key_id": 2}, "COLLECTGUARD_PII_HMAC_KEY must be set once key 1 is retired"),
    ({"pii_key": b64(K2), "pii_key_id": 2, "pii_hmac_key": "AAAA"}, "COLLECTGUARD_PII_HMAC_KEY must be base64"),
])
def test_a_bad_key_configuration_stops_the_start(kw, why):
    with pytest.raises(ValidationError, match=why):
        settings(**kw)
