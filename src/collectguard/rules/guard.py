"""The guard facade: one object that holds the compiled packs and judges events.

    guard = Guard.default()             # every pack shipped in collectguard/policy/packs
    decision = guard.check(event)       # -> Decision
    for line in guard.check_stream(lines):   # JSON Lines in, one decision (JSON) per line out
        ...
    data, bad = guard.check_utf8(lines)  # a batch of lines (bytes) in, UTF-8 decisions out

Loading reads packaged YAML through ``collectguard.policy.loader``; judging is pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cache
from typing import NamedTuple

from pydantic import ValidationError

from collectguard.domain.event import CollectionEvent, Decision, bad_input_from, describe_validation_error
from collectguard.errors import BadInput
from collectguard.policy import loader
from collectguard.policy.loader import LexiconSpec
from collectguard.rules.engine import CompiledPack, compile_pack, evaluate, evaluate_json, evaluate_utf8

__all__ = ["BadLine", "Guard", "check_stream"]


# The validator itself, without model_validate_json's Python wrapper: this loop runs per event.
_VALIDATE_JSON = CollectionEvent.__pydantic_validator__.validate_json


class Guard:
    """Judges collection events with one compiled pack per jurisdiction."""

    def __init__(self, packs: Iterable[CompiledPack]) -> None:
        self._packs: dict[str, CompiledPack] = {}
        for p in packs:
            if p.jurisdiction in self._packs:
                raise loader.PackError(f"two packs for jurisdiction {p.jurisdiction}")
            self._packs[p.jurisdiction] = p

    @classmethod
    def default(cls) -> Guard:
        """The guard with every pack shipped in the package (loaded and compiled once per process)."""
        return _default_guard()

    @classmethod
    def from_packs(cls, names: Iterable[str]) -> Guard:
        """A guard with only the named shipped packs (e.g. ``["CN"]``)."""
        return cls(_load_compiled(n) for n in names)

    @property
    def packs(self) -> Mapping[str, CompiledPack]:
        """The compiled packs by jurisdiction."""
        return dict(self._packs)

    def check(self, event: CollectionEvent) -> Decision:
        """Judge one event. Never raises for a valid event: errors deny (fail closed)."""
        return evaluate(event, self._packs.get(event.jurisdiction))

    def check_json(self, text: str | bytes, *, line: int | None = None) -> Decision:
        """Parse one JSON event and judge it; ``BadInput`` (naming ``line`` and the field) if malformed."""
        try:
            event = CollectionEvent.model_validate_json(text)
        except ValidationError as exc:
            raise bad_input_from(exc, line=line) from None
        return self.check(event)

    def check_stream(self, lines: Iterable[str | bytes], *, first_line: int = 1) -> Iterator[str]:
        """JSON Lines in, one compact JSON decision per non-blank line out (UTF-8, not ASCII-escaped).

        Raises ``BadInput`` naming the line number (counting from ``first_line``) and the field
        at the first malformed line; decisions for the lines before it have been yielded.
        """
        validate = _VALIDATE_JSON
        packs = self._packs
        for n, raw in enumerate(lines, first_line):
            if not raw or raw.isspace():
                continue
            try:
                event = validate(raw)
            except ValidationError as exc:
                raise bad_input_from(exc, line=n) from None
            yield evaluate_json(event, packs.get(event.jurisdiction))

    def check_batch(self, lines: Iterable[str | bytes], *, first_line: int = 1) -> tuple[list[str], BadLine | None]:
        """Like ``check_stream`` but returns (decisions, the first bad line or None) instead of raising;
        used to hand batches to worker processes, where exceptions do not travel well."""
        validate = _VALIDATE_JSON
        packs = self._packs
        out: list[str] = []
        append = out.append
        for n, raw in enumerate(lines, first_line):
            if not raw or raw.isspace():
                continue
            try:
                event = validate(raw)
            except ValidationError as exc:
                field, message = describe_validation_error(exc)
                return out, BadLine(n, field, message)
            append(evaluate_json(event, packs.get(event.jurisdiction)))
        return out, None

    def check_utf8(self, lines: Iterable[bytes], *, first_line: int = 1) -> tuple[bytes, BadLine | None]:
        """Like ``check_batch`` but the decisions come as one UTF-8 text, each followed by a newline:
        what the ``check`` command writes, without a str round trip per decision."""
        validate = _VALIDATE_JSON
        packs = self._packs
        out: list[bytes] = []
        append = out.append
        bad = None
        for n, raw in enumerate(lines, first_line):
            if not raw or raw.isspace():
                continue
            try:
                event = validate(raw)
            except ValidationError as exc:
                field, message = describe_validation_error(exc)
                bad = BadLine(n, field, message)
                break
            append(evaluate_utf8(event, packs.get(event.jurisdiction)))
        if out:
            out.append(b"")  # the last decision's newline
        return b"\n".join(out), bad


class BadLine(NamedTuple):
    """Where and why a batch stopped: the first malformed line."""

    line: int
    field: str | None
    message: str

    def to_error(self) -> BadInput:
        """The ``BadInput`` the CLI reports for it."""
        return BadInput(self.message, field=self.field, line=self.line)


def _load_compiled(name: str, lexicon: Callable[[str], LexiconSpec] = loader.load_lexicon) -> CompiledPack:
    spec = loader.load_pack(name)
    lexicons = {n: lexicon(n) for n in spec.lexicons}
    return compile_pack(spec, lexicons)


@cache
def _default_guard() -> Guard:
    lexicon = cache(loader.load_lexicon)  # most packs list the same lexicons: read each once
    return Guard(_load_compiled(n, lexicon) for n in loader.available_packs())


def check_stream(lines: Iterable[str | bytes]) -> Iterator[str]:
    """``Guard.default().check_stream(lines)``: JSON Lines in, one decision per line out."""
    return Guard.default().check_stream(lines)
