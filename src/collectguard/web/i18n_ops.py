"""UI strings and formatting of the staff pages (``/work``, ``/compliance``), from gettext catalogues.

The strings live in Babel/gettext catalogues, ``web/locale/<locale>/LC_MESSAGES/<domain>.po`` (the
domains of ``DOMAINS``: ``ops`` for the workbench and dashboard, ``casework`` for the collection
operations on them), one per language, with message ids that are keys (``work.queue.title``) rather
than source sentences, so that the zh-CN and the English text are both plain translations a
translator can edit. They are read at import with ``babel.messages.pofile.read_po`` — no compile
step, nothing to forget at build time — and merged into ``web.i18n.MESSAGES``, so templates use the
one ``t('key')`` they already have.

A key missing from a catalogue falls back to zh-CN (as ``web.i18n.translator`` does); a key that
another module already defines is refused at import, so two features can never fight over a string.
Templates also get ``lbl(kind, value)`` (display names of event values: ``lbl('channel', 'sms')``),
``rule_label(rule_id)``, ``may(principal, permission)`` (whether to offer an action: the services
decide) and the filters ``local_dt`` and ``pct``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po
from jinja2 import pass_context

from collectguard.services.authz import can
from collectguard.services.daily import HOME_ZONE
from collectguard.web.i18n import MESSAGES
from collectguard.web.render import templates

LOCALE_DIR = Path(__file__).with_name("locale")
DOMAINS = ("ops", "casework")
CATALOGUES = {"zh-CN": "zh_CN", "en": "en"}  # our language code -> gettext locale folder


def load_catalogues(locale_dir: Path = LOCALE_DIR, domains: tuple[str, ...] = DOMAINS) -> dict[str, dict[str, str]]:
    """``{key: {"zh-CN": text, "en": text}}`` from the .po files (untranslated entries left out).

    A key defined in two domains is refused: each string has one owner.
    """
    out: dict[str, dict[str, str]] = {}
    owner: dict[str, str] = {}
    for domain in domains:
        for lang, folder in CATALOGUES.items():
            path = locale_dir / folder / "LC_MESSAGES" / f"{domain}.po"
            with path.open("rb") as fh:
                catalogue = read_po(fh, locale=folder, domain=domain)
            for message in catalogue:
                if message.id and isinstance(message.id, str) and message.string:
                    if owner.setdefault(message.id, domain) != domain:
                        raise RuntimeError(f"{domain}.po redefines {message.id!r} of {owner[message.id]}.po")
                    out.setdefault(message.id, {})[lang] = str(message.string)
    return out


def install(messages: dict[str, dict[str, str]] = MESSAGES, domains: tuple[str, ...] = DOMAINS) -> int:
    """Merge the catalogues of ``domains`` into the translator's table; returns the number of keys added."""
    loaded = load_catalogues(domains=domains)
    clash = sorted(k for k in loaded if k in messages and messages[k] != loaded[k])
    if clash:
        raise RuntimeError(f"{'/'.join(domains)}.po redefines UI strings owned elsewhere: {', '.join(clash[:5])}")
    added = sum(1 for k in loaded if k not in messages)
    messages.update(loaded)
    return added


def _lookup(ctx: Any, key: str, fallback: str) -> str:
    text = ctx["t"](key)
    return fallback if text == key else str(text)


@pass_context
def lbl(ctx: Any, kind: str, value: Any) -> str:
    """Display name of an event value (``lbl('role', 'spouse')`` -> 配偶 / spouse); the value when unknown."""
    return "" if value is None else _lookup(ctx, f"v.{kind}.{value}", str(value))


@pass_context
def rule_label(ctx: Any, rule: str) -> str:
    """A short name for a rule id (``cn.quiet_hours`` -> 夜间禁止催收); the id itself when none is known."""
    return _lookup(ctx, f"rule.{rule}", rule)


def may(principal: Any, permission: str) -> bool:
    """Whether to offer ``principal`` an action needing ``permission`` (the service checks it again)."""
    return principal is not None and hasattr(principal, "role") and can(principal, permission)


def local_dt(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An aware (or naive UTC) datetime, or an ISO string with an offset, as local wall-clock text.

    Stored instants are shown in ``HOME_ZONE``; an event's ISO time is already the recipient's local
    time and keeps its own offset.
    """
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
        offset = parsed.isoformat()[-6:] if parsed.utcoffset() is not None else ""
        return parsed.strftime(fmt) + (f" (UTC{offset})" if offset else "")
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return aware.astimezone(HOME_ZONE).strftime(fmt)
    return str(value)


def pct(value: Any) -> str:
    """0.1234 -> ``12.3%``; ``None`` -> an en dash."""
    return "–" if value is None else f"{float(value) * 100:.1f}%"


install()
templates.env.globals.update(lbl=lbl, rule_label=rule_label, may=may)
templates.env.filters.update(local_dt=local_dt, pct=pct)
