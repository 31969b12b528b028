"""FastAPI dependencies (``Annotated`` style): the container and the caller's identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from collectguard.bootstrap import Container


def get_container(request: Request) -> Container:
    return request.app.state.container  # type: ignore[no-any-return]


ContainerDep = Annotated[Container, Depends(get_container)]
