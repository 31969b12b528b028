"""``collectguard qa [PATH|-]``: transcripts in, one QA result per line out (DESIGN.md §7).

Input: one transcript (a JSON object, pretty-printed or not), a JSON array of them, or JSON Lines
of many. Output: one compact JSON result per transcript on stdout, in input order, UTF-8:
``{"verdict": "clean" | "violations", "findings": [{"rule", "citations", "turn", "span", …}], …}``.
Exit 0 whatever the verdicts; a malformed transcript raises ``BadInput`` naming the line and the
field (the results before it have been written), which the CLI turns into exit 2.

Nothing is stored unless ``--store`` is given: then every transcript is validated first, all are
judged and stored for the tenant in one transaction (idempotent per transcript), and each line
also carries ``qa_id`` and whether the call was sampled for human review.

The top-level imports stay light: the rule packs load only when the first transcript is judged.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING

from collectguard.cli._jsonin import JsonLines, open_input, read_head

if TYPE_CHECKING:
    import typer

    from collectguard.domain.transcript import Transcript

__all__ = ["qa_command", "register"]


def _transcripts(src: IO[bytes]) -> Iterator[Transcript]:
    """The transcripts of ``src`` in order, validated one by one (``BadInput`` at the first bad one)."""
    from collectguard.domain.transcript import parse_transcript, parse_transcript_json

    head = read_head(src)
    if head is None:
        return
    if isinstance(head, JsonLines):  # one transcript per line
        yield parse_transcript_json(head.first, line=head.line)
        for n, raw in enumerate(src, head.line + 1):
            if raw.strip():
                yield parse_transcript_json(raw, line=n)
        return
    if isinstance(head.value, list):  # one document over several lines: an array or an object
        for i, obj in enumerate(head.value):
            yield parse_transcript(obj, prefix=str(i))
    else:
        yield parse_transcript(head.value, line=head.line)


def qa_command(path: str = "-", *, out: IO[str] | None = None, store: bool = False,
               tenant: str | None = None) -> None:
    """Judge the transcripts in ``path`` (``-``: stdin); one result per line on ``out``.

    ``store``: validate all, then judge and store them for ``tenant`` (default: the settings'
    default tenant). Raises ``BadInput`` (exit 2) naming the line and field of the first bad one.
    """
    stream = out if out is not None else sys.stdout
    binary: IO[bytes] | None = getattr(stream, "buffer", None)
    stream.flush()

    def emit(text: str) -> None:
        if binary is not None:
            binary.write(text.encode("utf-8") + b"\n")  # UTF-8 whatever the locale says
        else:
            stream.write(text + "\n")

    src = open_input(path)
    try:
        if store:
            _store(list(_transcripts(src)), tenant, emit)
            return
        from collectguard.rules.qa import qa_check

        for tr in _transcripts(src):
            emit(qa_check(tr).model_dump_json())
    finally:
        (binary or stream).flush()
        if src is not sys.stdin.buffer:
            src.close()


def _store(transcripts: list[Transcript], tenant: str | None, emit: Callable[[str], None]) -> None:
    from collectguard.cli import context
    from collectguard.services.accounts import tenant_get
    from collectguard.services.qa import qa_results_store

    c = context.container()
    with c.uow() as s:
        t = tenant_get(s, tenant or c.settings.default_tenant)
        results = qa_results_store(s, cipher=c.cipher, tenant_id=t.id, actor="cli", now=c.clock(),
                                   transcripts=transcripts)
    for r in results:
        emit(context.dumps(r))


def register(app: typer.Typer) -> None:
    """Add the ``qa`` command to the Typer ``app`` (called by ``collectguard.cli.main``)."""
    import typer

    @app.command("qa")
    def qa(
        path: str = typer.Argument("-", help="a transcript (JSON), a JSON array or JSON Lines; - reads stdin"),
        store: bool = typer.Option(False, "--store", help="store the results for the review queue"),
        tenant: str | None = typer.Option(None, help="tenant code for --store (default: the settings' default)"),
    ) -> None:
        """QA (质检) of call transcripts and chats: one result (JSON) per transcript on stdout."""
        qa_command(path, store=store, tenant=tenant)
