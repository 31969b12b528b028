"""PII at rest: AES-256-GCM per field, keyed HMAC-SHA256 for look-ups, masking for display.

Ciphertext layout: ``b"\\x01" + key_id(1 byte) + nonce(12) + ciphertext+tag``. The key id makes key
rotation possible: a value decrypts with whichever configured key has its id, new values are
encrypted with the current key, and ``collectguard keys rotate`` re-encrypts old values
(``services/keyrotation.py``, docs/security.md).

The look-up hash key is separate from the encryption keys and does not change when they rotate:
look-up hashes are pseudonyms that other rows keep (per-number attempt counts, number stops), so
re-keying them would silently reset caps and lift stops. Unless given explicitly it is derived from
key 1, the first key, exactly as before key rotation existed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = 1
_HEADER = 2  # version byte + key id byte
_NONCE = 12
_TAG = 16
KEY_IDS = range(1, 256)


class PiiKeyError(ValueError):
    """A ciphertext that no configured key opens: an unknown key id, or the wrong key under an id."""


def derive_hmac_key(root_key: bytes) -> bytes:
    """The look-up key derived from ``root_key`` (key 1): what every database hashed with so far."""
    return hashlib.sha256(b"collectguard-hmac:" + root_key).digest()


def key_id_of(blob: bytes) -> int:
    """The id of the key that encrypted ``blob``; ``ValueError`` for something that is no ciphertext."""
    if len(blob) < _HEADER + _NONCE + _TAG or blob[0] != _VERSION:
        raise ValueError("unknown ciphertext version")
    return blob[1]


class PiiCipher:
    """Encrypts and decrypts personal data fields.

    ``key`` is the current key (id ``key_id``), ``old_keys`` maps the ids of retired keys still needed
    for reading to their bytes, and ``hmac_key`` is the look-up key (default: derived from key 1).
    """

    def __init__(self, key: bytes, *, key_id: int = 1, old_keys: dict[int, bytes] | None = None,
                 hmac_key: bytes | None = None) -> None:
        if len(key) != 32:
            raise ValueError("the PII key must be 32 bytes")
        if key_id not in KEY_IDS:
            raise ValueError("a PII key id is 1-255")
        old = dict(old_keys or {})
        for kid, k in old.items():
            if kid not in KEY_IDS or len(k) != 32:
                raise ValueError(f"old PII key {kid}: ids are 1-255 and keys 32 bytes")
        if old.get(key_id, key) != key:
            raise ValueError(f"key id {key_id} is both the current key and a different old key")
        self.key_id = key_id
        self._keys = {**old, key_id: key}
        self._aead = {kid: AESGCM(k) for kid, k in self._keys.items()}
        if hmac_key is None:
            root = self._keys.get(1)
            if root is None:
                raise ValueError("the look-up (HMAC) key must be given when key 1 is not configured")
            hmac_key = derive_hmac_key(root)
        if len(hmac_key) != 32:
            raise ValueError("the look-up (HMAC) key must be 32 bytes")
        self._hmac_key = hmac_key

    @property
    def key_ids(self) -> frozenset[int]:
        """The ids of every key this cipher can decrypt with."""
        return frozenset(self._keys)

    def encrypt(self, plaintext: str) -> bytes:
        nonce = os.urandom(_NONCE)
        ct = self._aead[self.key_id].encrypt(nonce, plaintext.encode("utf-8"), None)
        return bytes([_VERSION, self.key_id]) + nonce + ct

    def decrypt(self, blob: bytes) -> str:
        kid = key_id_of(blob)
        aead = self._aead.get(kid)
        if aead is None:
            raise PiiKeyError(f"no key with id {kid}")
        try:
            return aead.decrypt(blob[_HEADER:_HEADER + _NONCE], blob[_HEADER + _NONCE:], None).decode("utf-8")
        except InvalidTag:
            raise PiiKeyError(f"key {kid} does not open this value (a wrong key, or tampered data)") from None

    def is_current(self, blob: bytes) -> bool:
        """Whether ``blob`` is encrypted under the current key (nothing for a rotation to do)."""
        return key_id_of(blob) == self.key_id

    def reencrypt(self, blob: bytes) -> bytes:
        """``blob`` under the current key (a fresh nonce); unchanged when it already is."""
        return blob if self.is_current(blob) else self.encrypt(self.decrypt(blob))

    def lookup_hash(self, value: str) -> str:
        """Deterministic keyed hash for equality look-ups (phone, ID number) without the plaintext."""
        return hmac.new(self._hmac_key, value.strip().encode("utf-8"), hashlib.sha256).hexdigest()

    def hmac_key_b64(self) -> str:
        """The look-up key as base64, to pin it (``COLLECTGUARD_PII_HMAC_KEY``) before key 1 is retired."""
        return base64.b64encode(self._hmac_key).decode("ascii")


def mask_phone(phone: str) -> str:
    """138****1234 style: keep the first 3 and last 4 digits of the national number."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if phone.startswith("+86") and digits.startswith("86"):
        digits = digits[2:]
    if len(digits) <= 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_name(name: str) -> str:
    """张** / J*** D**: the first character of the family name stays."""
    name = name.strip()
    if not name:
        return ""
    if any("\u4e00" <= ch <= "\u9fff" for ch in name):
        return name[0] + "*" * (len(name) - 1)
    return " ".join(part[0] + "*" * (len(part) - 1) for part in name.split())


def mask_id_number(id_number: str) -> str:
    if len(id_number) <= 8:
        return "*" * len(id_number)
    return id_number[:4] + "*" * (len(id_number) - 8) + id_number[-4:]
