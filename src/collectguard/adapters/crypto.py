"""PII at rest: AES-256-GCM per field, keyed HMAC-SHA256 for look-ups, masking for display.

Ciphertext layout: ``b"\\x01" + key_id(1 byte) + nonce(12) + ciphertext+tag``; the version byte and
key id make key rotation possible (decrypt with any known key, encrypt with the current one).
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = 1


class PiiCipher:
    """Encrypts and decrypts personal data fields; ``keys`` maps key id -> 32-byte key."""

    def __init__(self, key: bytes, *, key_id: int = 1, old_keys: dict[int, bytes] | None = None) -> None:
        if len(key) != 32:
            raise ValueError("the PII key must be 32 bytes")
        self.key_id = key_id
        self._keys = {**(old_keys or {}), key_id: key}
        self._aead = {kid: AESGCM(k) for kid, k in self._keys.items()}
        # The look-up hash uses a key derived from, but different to, the encryption key.
        self._hmac_key = hashlib.sha256(b"collectguard-hmac:" + key).digest()

    def encrypt(self, plaintext: str) -> bytes:
        nonce = os.urandom(12)
        ct = self._aead[self.key_id].encrypt(nonce, plaintext.encode("utf-8"), None)
        return bytes([_VERSION, self.key_id]) + nonce + ct

    def decrypt(self, blob: bytes) -> str:
        if not blob or blob[0] != _VERSION:
            raise ValueError("unknown ciphertext version")
        aead = self._aead.get(blob[1])
        if aead is None:
            raise ValueError(f"no key with id {blob[1]}")
        return aead.decrypt(blob[2:14], blob[14:], None).decode("utf-8")

    def lookup_hash(self, value: str) -> str:
        """Deterministic keyed hash for equality look-ups (phone, ID number) without the plaintext."""
        return hmac.new(self._hmac_key, value.strip().encode("utf-8"), hashlib.sha256).hexdigest()


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
