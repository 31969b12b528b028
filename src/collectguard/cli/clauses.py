"""``collectguard clauses lint [PATH|-]``: a contract or privacy-policy text -> findings (DESIGN §7).

Output: one JSON object ``{"verdict": "clean" | "problems", "findings": [...]}`` on stdout. Exit 0
whatever the verdict; 2 when the file cannot be read or is not UTF-8.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from collectguard.cli import context
from collectguard.errors import BadInput

clauses_app = typer.Typer(help="Contract clauses and privacy policies (格式条款、隐私政策).", no_args_is_help=True)


def _read(path: str) -> str:
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}", field="PATH") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise BadInput("the text is not UTF-8; save it as UTF-8 and try again", line=line) from None


@clauses_app.command("lint")
def lint(path: Annotated[str, typer.Argument(help="a UTF-8 text file, or - for stdin")] = "-") -> None:
    """Find standard-term and privacy-policy problems (PIPL 14/16/17/23/29, Civil Code 496/497)."""
    from collectguard.services.clauses import clauses_lint

    typer.echo(context.dumps(clauses_lint(_read(path))))


def register(app: typer.Typer) -> None:
    """Add the ``clauses`` sub-app to the main CLI."""
    app.add_typer(clauses_app, name="clauses")
