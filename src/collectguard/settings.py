"""The one validated settings object. Built once at the edge and passed in; never a module global.

Every field reads from the environment with the prefix ``COLLECTGUARD_`` (e.g.
``COLLECTGUARD_DATABASE_URL``). Outside development the secrets must be set explicitly.
"""

from __future__ import annotations

import base64
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
    secret_key: str = Field(DEV_SECRET, description="Signs sessions, CSRF tokens and links")
    pii_key: str = Field(
        "",
        description="Base64 of a 32-byte AES-256-GCM key for PII at rest; derived from secret_key in "
        "development when empty, required in production",
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
        return self

    def pii_key_bytes(self) -> bytes:
        """The 32-byte PII key: from ``pii_key``, or derived from ``secret_key`` outside production."""
        if self.pii_key:
            raw = base64.b64decode(self.pii_key)
            if len(raw) != 32:
                raise ValueError("COLLECTGUARD_PII_KEY must be base64 of exactly 32 bytes")
            return raw
        return hashlib.sha256(("pii:" + self.secret_key).encode()).digest()

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
