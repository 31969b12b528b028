"""``collectguard assess [PATH|-]`` / ``assess --text "…"``: the legality self-check (DESIGN §7).

Input: one event (JSON), JSON Lines of events, or ``{"text": …}``; or a description with
``--text``. Output: one assessment per input (compact JSON per line), or with ``--format text``
a readable report (Chinese by default, English with ``--lang en`` or for an English description).
Exit 0 whatever the verdict; bad input exits 2 with one line naming the field.
No database: the self-check stores nothing.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from collectguard.errors import BadInput

if TYPE_CHECKING:
    import typer

    from collectguard.domain.assessment import Assessment

__all__ = ["assess_command", "register", "render_text"]

_VERDICT = {"unlawful": ("违法", "UNLAWFUL"), "lawful": ("未发现违法", "LAWFUL (no breach found)"),
            "undetermined": ("尚不能确定", "UNDETERMINED")}
_KIND = {"civil": ("民事", "civil"), "administrative": ("行政", "administrative"),
         "criminal": ("刑事", "criminal")}


def _read(path: str) -> list[tuple[int, Any]]:
    try:
        raw = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}", field="PATH") from None
    except UnicodeDecodeError:
        raise BadInput("not UTF-8 text", field="PATH") from None
    if not raw.strip():
        raise BadInput("empty input: give an event (JSON) or use --text", field="PATH")
    try:
        doc = json.loads(raw)
        return [(1, doc)]
    except ValueError:
        pass
    items = []
    for n, line in enumerate(raw.splitlines(), 1):  # JSON Lines
        if line.strip():
            try:
                items.append((n, json.loads(line)))
            except ValueError as exc:
                raise BadInput(f"not valid JSON ({getattr(exc, 'msg', exc)})", line=n) from None
    return items


def render_text(a: Assessment, lang: str = "zh") -> str:
    """A readable report of an assessment for people (zh or en)."""
    from collectguard.services.assess import describe_event, finding_articles

    zh = lang.startswith("zh")

    def t(z: str, e: str) -> str:
        return z if zh else e

    out = [t("结论：", "Verdict: ") + _VERDICT[a.verdict][0 if zh else 1]]
    if a.events:
        out.append(t("\n我们理解的事实：", "\nFacts as understood:"))
        out += [f"  {i + 1}. {describe_event(e.facts, set(e.unknown), lang)}" for i, e in enumerate(a.events)]
    if a.lending and a.lending.get("apr") is not None:
        out.append(t("  借款："
                     f"实际年化成本约 {a.lending['apr']}%", "  Loan: actual annual cost "
                                                            f"about {a.lending['apr']}%"))
    if a.findings:
        out.append(t("\n违法之处：", "\nWhat was unlawful:"))
        for i, f in enumerate(a.findings, 1):
            out.append(f"  {i}. {(f.title_zh if zh else f.title_en) or f.rule}")
            out.append(f"     {f.explain_zh if zh else f.explain_en}")
            labels = [x["label"] for x in finding_articles(f, lang)]
            if labels:
                out.append(t("     依据：", "     Basis: ") + t("；", "; ").join(labels))
    if a.missing_facts:
        out.append(t("\n需要补充的事实（结论取决于这些问题的答案）：", "\nMissing facts (the verdict "
                                                                       "depends on them):"))
        out += [f"  - {m.question_zh if zh else m.question_en}" for m in a.missing_facts]
    if a.consequences:
        out.append(t("\n可能的法律后果：", "\nPossible legal consequences:"))
        for c in a.consequences:
            kind = _KIND[c["kind"]][0 if zh else 1]
            out.append(f"  [{kind}] {c['title_zh'] if zh else c['title_en']}：" if zh else
                       f"  [{kind}] {c['title_en']}: ")
            out[-1] += c["text_zh"] if zh else c["text_en"]
    if a.next_steps:
        out.append(t("\n建议的下一步：", "\nWhat you can do next:"))
        out += [f"  - {s['text_zh'] if zh else s['text_en']}" for s in a.next_steps]
    if a.notes:
        out.append(t("\n说明：", "\nNotes:"))
        out += [f"  - {n.message_zh if zh else n.message_en}" for n in a.notes]
    out.append(t("\n本结果由规则自动得出，"
                 "不构成法律意见。", "\nAn automatic check against rules, not legal advice."))
    return "\n".join(out)


def assess_command(path: str = "-", *, text: str | None = None, jurisdiction: str | None = None,
                   fmt: str = "json", lang: str | None = None, as_of: date | None = None,
                   out: IO[str] | None = None) -> None:
    """Assess the input and write the result(s) to ``out`` (stdout); ``BadInput`` for bad input."""
    from collectguard.services.assess import assessment_from_request, assessment_from_text

    if fmt not in ("json", "text"):
        raise BadInput("expected json or text", field="--format")
    if lang is not None and lang not in ("zh", "en"):
        raise BadInput("expected zh or en", field="--lang")
    now = datetime.now(UTC) if as_of is None else datetime(as_of.year, as_of.month, as_of.day, 4, tzinfo=UTC)
    stream = out if out is not None else sys.stdout
    if text is not None:
        results = [assessment_from_text(text=text, jurisdiction=jurisdiction, now=now)]
        source = text
    else:
        results = []
        items = _read(path)
        for n, obj in items:
            try:
                results.append(assessment_from_request(obj, now=now))
            except BadInput as exc:
                if len(items) == 1:
                    raise
                # Name the line too: "line 2, field 'channel': …".
                reason = exc.message.split(": ", 1)[1] if exc.field else exc.message
                raise BadInput(reason, field=exc.field, line=n) from None
        source = ""
    if fmt == "json":
        for r in results:
            stream.write(json.dumps(r.model_dump(mode="json"), ensure_ascii=False) + "\n")
        return
    from collectguard.rules.extract.normalise import has_cjk

    chosen = lang or ("en" if source and not has_cjk(source) else "zh")
    stream.write("\n\n".join(render_text(r, chosen) for r in results) + "\n")


def register(app: typer.Typer) -> None:
    """Add the ``assess`` command to the Typer ``app`` (called by ``collectguard.cli.main``)."""
    import typer

    @app.command("assess")
    def assess(
        path: str = typer.Argument("-", help="event JSON (or JSON Lines, or {\"text\": …}); - reads stdin"),
        text: str | None = typer.Option(None, "--text", help="describe what happened, in Chinese or English"),
        jurisdiction: str | None = typer.Option(None, "--jurisdiction", help="CN, US or EU (default CN for "
                                                                             "Chinese)"),
        fmt: str = typer.Option("json", "--format", help="json (default) or text (a readable report)"),
        lang: str | None = typer.Option(None, "--lang", help="language of --format text: zh or en"),
        as_of: str | None = typer.Option(None, "--as-of", help="date of the contacts described (YYYY-MM-DD; "
                                                                "default today)"),
    ) -> None:
        """Is what was done lawful? Assess a past contact: verdict, findings, consequences, next steps."""
        day = None
        if as_of is not None:
            try:
                day = date.fromisoformat(as_of)
            except ValueError:
                raise BadInput("expected YYYY-MM-DD", field="--as-of") from None
        if jurisdiction is not None and jurisdiction.upper() in ("CN", "US", "EU"):
            jurisdiction = jurisdiction.upper()
        assess_command(path, text=text, jurisdiction=jurisdiction, fmt=fmt, lang=lang, as_of=day)
