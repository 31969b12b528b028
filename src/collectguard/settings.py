"""The one validated settings object. Built once at the edge and passed in; never a module global.

Every field reads from the environment with the prefix ``COLLECTGUARD_`` (e.g.
``COLLECTGUARD_DATABASE_URL``). Outside development the secrets must be set explicitly.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Development-only secrets: the product refuses to start with them when environment=production.
DEV_SECRET = "dev-only-secret-change-me"  # noqa: S105 - a placeholder that production refuses


class Settings(BaseSettings):
    """Runtime configuration of collectguard."""

    model_config = SettingsConfigDict(env_prefix="COLLECTGUARD_", extra="ignore")

    environment: Literal["development", "test", "production"] = Field(
        "development", description="development (defaults allowed), test, or production (secrets required)"
    )
    database_url: str = Field(
        "sqlite:///collectguard.db",
        description="SQLAlchemy URL. Default: an SQLite file collectguard.db in the working directory; "
        "PostgreSQL as postgresql+psycopg://user@host:5432/db",
    )
    db_pool_size: int = Field(
        16,
        ge=1,
        le=200,
        description="PostgreSQL connections each process keeps open and reuses; the API caps its worker "
        "threads at this number so that no request needs a connection beyond the pool (one opened and closed "
        "per request costs the server more CPU than the request). Keep workers x (pool + 4) under the "
        "server's max_connections",
    )
    db_ping_idle_s: float = Field(
        10.0,
        ge=0,
        description="A pooled PostgreSQL connection idle for longer than this is tested (SELECT 1) before "
        "use and replaced when dead (server restarted, firewall timeout); 0 tests on every use",
    )
    secret_key: str = Field(DEV_SECRET, description="Signs sessions, CSRF tokens and links")
    pii_key: str = Field(
        "",
        description="Base64 of a 32-byte AES-256-GCM key for PII at rest; derived from secret_key in "
        "development when empty, required in production",
    )
    pii_key_id: int = Field(
        1, ge=1, le=255,
        description="Id (1-255) of PII_KEY, written into every new ciphertext; a new key gets a new id "
        "(docs/security.md, key rotation)",
    )
    pii_old_keys: str = Field(
        "",
        description="Retired PII keys still needed to read old ciphertexts, comma-separated <id>:<base64>, "
        "e.g. 1:q83v...=; empty once `collectguard keys rotate` has re-encrypted everything",
    )
    pii_hmac_key: str = Field(
        "",
        description="Base64 of the 32-byte key of the PII look-up hashes (phone, ID number); empty: derived "
        "from key 1. Set it (`collectguard keys hmac-key` prints the value) before retiring key 1",
    )
    host: str = Field("127.0.0.1", description="serve: bind address")
    port: int = Field(8000, description="serve: port")
    log_level: str = Field("INFO", description="Log level of the structured JSON logs")
    log_json: bool = Field(True, description="Structured JSON logs (false: human-readable console)")
    assess_rate_limit_per_minute: int = Field(30, description="Public /assess requests per client per minute")
    max_request_bytes: int = Field(2_000_000, description="Largest accepted HTTP request body")
    default_tenant: str = Field("demo-lender", description="Tenant code used by the CLI when none is given")
    audit_signing_key: str = Field(
        "",
        description="Base64 of a 32-byte ed25519 private key (seed) that signs audit checkpoints; derived "
        "from secret_key outside production when empty, required in production (see docs/audit.md)",
    )
    broker_url: str = Field(
        "",
        description="AMQP URL of the RabbitMQ broker the outbox relay publishes to, e.g. "
        "amqp://guest:guest@127.0.0.1:5672/%2F; empty: messages are delivered in process (docs/scaling.md)",
    )
    smtp_url: str = Field(
        "",
        description="SMTP server for e-mail channel sends, smtp://[user:password@]host[:port][?from=addr&starttls=1] "
        "(smtps:// for TLS); empty: e-mails are only logged outside production, and held in production",
    )

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        if self.environment == "production":
            if self.secret_key == DEV_SECRET or len(self.secret_key) < 32:
                raise ValueError("COLLECTGUARD_SECRET_KEY must be set (>= 32 characters) in production")
            if not self.pii_key:
                raise ValueError("COLLECTGUARD_PII_KEY must be set in production")
        self.pii_keyring()  # a malformed key, old key or look-up key stops the start, not the first read
        return self

    def pii_key_bytes(self) -> bytes:
        """The 32-byte current PII key: from ``pii_key``, or derived from ``secret_key`` outside production."""
        if self.pii_key:
            return _b64_32(self.pii_key, "COLLECTGUARD_PII_KEY")
        return hashlib.sha256(("pii:" + self.secret_key).encode()).digest()

    def pii_old_keys_map(self) -> dict[int, bytes]:
        """``pii_old_keys`` parsed: key id -> 32 key bytes."""
        keys: dict[int, bytes] = {}
        for item in filter(None, (part.strip() for part in self.pii_old_keys.split(","))):
            kid, sep, b64 = item.partition(":")
            if not sep or not kid.strip().isdigit() or not 1 <= int(kid) <= 255:
                raise ValueError("COLLECTGUARD_PII_OLD_KEYS is a comma-separated list of <id>:<base64> "
                                 "with ids 1-255")
            raw = _b64_32(b64, f"COLLECTGUARD_PII_OLD_KEYS key {int(kid)}")
            if keys.setdefault(int(kid), raw) != raw:
                raise ValueError(f"COLLECTGUARD_PII_OLD_KEYS names key {int(kid)} twice")
        return keys

    def pii_keyring(self) -> tuple[int, bytes, dict[int, bytes], bytes | None]:
        """(current key id, current key, old keys, look-up key or None for derived from key 1), checked."""
        current, old = self.pii_key_bytes(), self.pii_old_keys_map()
        if old.get(self.pii_key_id, current) != current:
            raise ValueError(f"COLLECTGUARD_PII_OLD_KEYS names key {self.pii_key_id}, the id of "
                             "COLLECTGUARD_PII_KEY, with other bytes: a new key needs a new COLLECTGUARD_PII_KEY_ID")
        old.pop(self.pii_key_id, None)
        hmac_key = _b64_32(self.pii_hmac_key, "COLLECTGUARD_PII_HMAC_KEY") if self.pii_hmac_key else None
        if hmac_key is None and self.pii_key_id != 1 and 1 not in old:
            raise ValueError("COLLECTGUARD_PII_HMAC_KEY must be set once key 1 is retired: the look-up hashes "
                             "were made with a key derived from key 1 (`collectguard keys hmac-key` prints it "
                             "while key 1 is configured)")
        return self.pii_key_id, current, old, hmac_key

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _b64_32(value: str, name: str) -> bytes:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except binascii.Error:
        raw = b""
    if len(raw) != 32:
        raise ValueError(f"{name} must be base64 of exactly 32 bytes")
    return raw
