"""UI strings of the borrower portal (``/portal``), from the gettext catalogues ``portal.po``.

The same scheme as the staff pages (``web.i18n_ops``): one Babel/gettext catalogue per language,
``web/locale/<locale>/LC_MESSAGES/portal.po``, with key message ids (``portal.nav.contacts``), read
at import with ``babel.messages.pofile.read_po`` and merged into ``web.i18n.MESSAGES``; a key that
another module already defines differently is refused at import. The portal is written for
borrowers, not staff: plain words, no jargon (逾期 35 天, not DPD 35), and it also uses the staff
pages' value labels (``lbl``, ``rule_label``), which ``i18n_ops`` installs, and adds the filter
``portal_dt`` (times in the borrower's own time zone).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collectguard.services.daily import HOME_ZONE
from collectguard.web import i18n_ops
from collectguard.web.i18n import MESSAGES
from collectguard.web.render import templates

DOMAIN = "portal"


def load_catalogues(locale_dir: Path = i18n_ops.LOCALE_DIR) -> dict[str, dict[str, str]]:
    """``{key: {"zh-CN": text, "en": text}}`` from the portal's .po files (untranslated entries left out)."""
    return i18n_ops.load_catalogues(locale_dir, domains=(DOMAIN,))


def install(messages: dict[str, dict[str, str]] = MESSAGES) -> int:
    """Merge the portal's catalogues into the translator's table; returns the number of keys added."""
    return i18n_ops.install(messages, domains=(DOMAIN,))


def portal_dt(value: Any, tz: str | None = None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An instant (aware or naive-UTC datetime, or ISO text) as wall-clock time in the borrower's zone
    ``tz`` (the home zone when unknown): a borrower reads times as they lived them."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if not isinstance(value, dt.datetime):
        return str(value)
    try:
        zone = ZoneInfo(tz) if tz else HOME_ZONE
    except (ZoneInfoNotFoundError, ValueError):
        zone = HOME_ZONE
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return aware.astimezone(zone).strftime(fmt)


install()
templates.env.filters["portal_dt"] = portal_dt
