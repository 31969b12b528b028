from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from collectguard import __version__
from collectguard.api.deps import ContainerDep
from collectguard.errors import Unavailable

router = APIRouter(tags=["health"])


@router.get("/health")
def health(c: ContainerDep) -> dict[str, str]:
    """Liveness and database reachability."""
    try:
        with c.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise Unavailable("database unreachable") from exc
    return {"status": "ok", "version": __version__, "database": c.engine.dialect.name}
