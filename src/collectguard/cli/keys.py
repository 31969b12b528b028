"""``collectguard keys``: PII key rotation (docs/security.md, "Key rotation").

- ``keys generate``  a new random key (base64 of 32 bytes) for ``COLLECTGUARD_PII_KEY``
- ``keys status``    which key id encrypts how many values; whether the old keys are still needed
- ``keys rotate``    re-encrypt everything under the current key (resumable, idempotent, audited)
- ``keys hmac-key``  the look-up key to pin as ``COLLECTGUARD_PII_HMAC_KEY`` before key 1 is retired
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from collectguard.cli import context

if TYPE_CHECKING:
    from collectguard.settings import Settings

keys_app = typer.Typer(help="PII encryption keys: status, rotation.", no_args_is_help=True)


def _settings() -> Settings:
    """The settings, with a bad key configuration as one line and exit 2 (not a validation traceback)."""
    from pydantic import ValidationError

    from collectguard.errors import BadInput
    from collectguard.settings import Settings

    overrides: dict[str, Any] = {"database_url": context.DATABASE_URL} if context.DATABASE_URL else {}
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", exc)).removeprefix("Value error, ")
        raise BadInput(f"COLLECTGUARD_{where.upper()}: {msg}" if where else msg) from None


@keys_app.command("generate")
def generate() -> None:
    """Print a new random key (base64 of 32 bytes) for COLLECTGUARD_PII_KEY; give it a new key id."""
    import base64
    import secrets

    typer.echo(base64.b64encode(secrets.token_bytes(32)).decode("ascii"))


@keys_app.command("status")
def status() -> None:
    """How many values each key id encrypts, per column; which old keys are still needed."""
    from collectguard.services.keyrotation import keys_status

    _settings()
    typer.echo(context.dumps(keys_status(context.container())))


@keys_app.command("rotate")
def rotate(
    batch_size: Annotated[int, typer.Option("--batch-size", help="rows per transaction", min=1, max=100_000)] = 1000,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="check the keys and count; change nothing")] = False,
) -> None:
    """Re-encrypt every encrypted value under COLLECTGUARD_PII_KEY (id COLLECTGUARD_PII_KEY_ID).

    Old values need their key in COLLECTGUARD_PII_OLD_KEYS (<id>:<base64>, comma-separated). Safe to
    interrupt and to run again: finished batches stay done, a second run changes nothing.
    """
    from collectguard.errors import BadInput
    from collectguard.services.keyrotation import keys_rotate

    settings = _settings()
    if not settings.pii_key:
        raise BadInput("COLLECTGUARD_PII_KEY is not set: a rotation re-encrypts under an explicit new key "
                       "(`collectguard keys generate`), with a new COLLECTGUARD_PII_KEY_ID")
    c = context.container()
    result = keys_rotate(c, batch_size=batch_size, dry_run=dry_run, progress=context.progress_factory())
    typer.echo(context.dumps(result))
    if result.get("old_keys_still_needed"):
        typer.echo(f"note: values under key(s) {result['old_keys_still_needed']} remain (written meanwhile by a "
                   "process with the old configuration?): run it again", err=True)


@keys_app.command("hmac-key")
def hmac_key() -> None:
    """Print the PII look-up key (base64) to set as COLLECTGUARD_PII_HMAC_KEY before retiring key 1. Secret."""
    from collectguard.bootstrap import pii_cipher

    typer.echo(pii_cipher(_settings()).hmac_key_b64())


def register(app: typer.Typer) -> None:
    """Add the ``keys`` sub-app to the main CLI."""
    app.add_typer(keys_app, name="keys")
