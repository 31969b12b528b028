"""The rule engine: collection event -> decision, from rule packs that are data.

Public API::

    from collectguard.rules import Guard, check_stream, compile_pack, evaluate
    Guard.default().check(event) -> Decision

See docs/rules.md for the rule kinds and the pack format.
"""

from __future__ import annotations

from collectguard.rules.engine import CompiledPack, compile_pack, evaluate
from collectguard.rules.guard import Guard, check_stream

__all__ = ["CompiledPack", "Guard", "check_stream", "compile_pack", "evaluate"]
