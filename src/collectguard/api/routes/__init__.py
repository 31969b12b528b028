"""Route modules. Each module exposes ``router``; optional ones are skipped until they exist."""

from __future__ import annotations

import importlib

from fastapi import FastAPI

# API routers (prefix /api/v1) and page routers (no prefix), in mounting order.
API_MODULES = ("health", "guard", "portfolio", "attempts", "assess", "consents", "clauses", "audit", "ledger",
               "accounts", "qa", "ops", "costs")
PAGE_MODULES = ("collectguard.web.pages", "collectguard.web.auth", "collectguard.web.selfcheck",
                "collectguard.web.work", "collectguard.web.compliance", "collectguard.web.portal",
                "collectguard.web.work_ops", "collectguard.web.compliance_ops")


def register_routes(app: FastAPI) -> None:
    for name in API_MODULES:
        try:
            mod = importlib.import_module(f"collectguard.api.routes.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"collectguard.api.routes.{name}":
                continue
            raise
        prefix = "" if name == "health" else "/api/v1"
        app.include_router(mod.router, prefix=prefix)
        # A route module may also carry public pages (e.g. ops' /pay/{token}): mounted without prefix.
        if (pages := getattr(mod, "pages", None)) is not None:
            app.include_router(pages)
    for path in PAGE_MODULES:
        app.include_router(importlib.import_module(path).router)
