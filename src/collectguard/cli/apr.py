"""``collectguard apr [PATH|-] [--method actuarial|irr]``: loan cash flows -> APR (DESIGN §7).

Reads one JSON object, or JSON Lines of many, from a file or stdin and prints one result per
line. Numbers are read as their exact decimal text (never through float), so the domain's strict
money parser sees what was written, exponents and NaN included, and refuses them by field name.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from collectguard.errors import BadInput

METHODS = ("actuarial", "irr")


def _loads(text: str) -> Any:
    # parse_float/parse_constant keep "12.30", "1e3" and "NaN" as text for the strict parser.
    return json.loads(text, parse_float=str, parse_constant=str)


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read {path}: {exc}", field="path") from None


def iter_inputs(text: str) -> Iterator[tuple[int | None, Any]]:
    """Yield (line number or None for a single document, parsed JSON) for each input."""
    if not text.strip():
        raise BadInput("no input: expected a JSON object or JSON Lines")
    try:
        yield None, _loads(text)
        return
    except json.JSONDecodeError:
        pass
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                yield number, _loads(line)
            except json.JSONDecodeError as exc:
                raise BadInput(f"not JSON: {exc.msg}", line=number) from None


def register(app: typer.Typer) -> None:
    """Add the ``apr`` command to ``app``."""

    @app.command("apr")
    def apr_command(
        path: Annotated[str, typer.Argument(help="JSON or JSON Lines file; - for stdin")] = "-",
        method: Annotated[str, typer.Option(help="actuarial (Regulation Z Appendix J) or irr")] = "actuarial",
    ) -> None:
        """Loan cash flows -> APR in percent (Regulation Z Appendix J; --method irr: annualised IRR)."""
        if method not in METHODS:
            raise BadInput(f"expected one of {list(METHODS)}, got {method!r}", field="method")
        from collectguard.domain.apr import apr  # here, so `collectguard --help` stays fast

        for line, data in iter_inputs(_read(path)):
            if not isinstance(data, dict):
                raise BadInput("expected a JSON object", line=line)
            try:
                result = apr(data, method=method)
            except BadInput as exc:
                if line is None:
                    raise
                raise BadInput(exc.message, line=line, detail=exc.detail) from None
            typer.echo(json.dumps(result, ensure_ascii=False))
