"""The evidence bundle's readable report: one self-contained HTML page, zh-CN and en side by side."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from collectguard.adapters.crypto import PiiCipher
from collectguard.services.audit_borrower import BorrowerFile

TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["v"] = lambda x: "—" if x is None or x == "" else x
    env.filters["payload"] = _payload
    return env


def _payload(text: str) -> str:
    try:
        return json.dumps(json.loads(text), ensure_ascii=False, sort_keys=True)
    except ValueError:
        return text


def render_report(
    f: BorrowerFile,
    cipher: PiiCipher,
    *,
    data: dict[str, Any],
    records: list[dict[str, Any]],
    checkpoints: list[dict[str, Any]],
    key_id: str,
    now: dt.datetime,
) -> str:
    """Render ``evidence/report.html`` from the (already masked) bundle data."""
    # The payloads of audit records may quote personal data; they go through the same masker.
    from collectguard.services.evidence_data import Masker

    m = Masker(f, cipher)
    shown = [{**r, "payload": m.text(r["payload"])} for r in records]
    return (
        _env()
        .get_template("evidence/report.html")
        .render(
            d=data,
            records=shown,
            checkpoints=checkpoints,
            key_id=key_id,
            generated=now.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        )
    )
