"""Server-rendered pages. Thin: call one service, render one template."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from collectguard.api.deps import ContainerDep
from collectguard.services.portfolio import portfolio_summary
from collectguard.web.render import render

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def landing(request: Request, c: ContainerDep) -> HTMLResponse:
    as_of = c.clock().date()
    with c.uow(write=False) as s:
        figures = portfolio_summary(s, as_of=as_of)
    return render(request, "index.html", figures=figures)
