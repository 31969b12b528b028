"""Jinja2 rendering with the language picked from the request."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from collectguard.web.i18n import pick_lang, translator

templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))


def _money(value: Any) -> str:
    d = Decimal(str(value))
    return f"{d:,.2f}"


templates.env.filters["money"] = _money


def render(request: Request, name: str, **ctx: Any) -> HTMLResponse:
    lang = pick_lang(request)
    resp = templates.TemplateResponse(request, name, {"lang": lang, "t": translator(lang), **ctx})
    if request.query_params.get("lang"):
        resp.set_cookie("lang", lang, samesite="lax", httponly=True)
    return resp
