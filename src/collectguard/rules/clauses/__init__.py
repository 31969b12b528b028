"""The clause lint (pure): contract and privacy-policy texts -> findings with citations.

Public API::

    from collectguard.rules.clauses import ClauseLinter, lint_clauses
    lint_clauses(text) -> ClauseReport  # {"verdict": "clean" | "problems", "findings": [...]}

Patterns are data in ``collectguard/policy/clauses/*.yaml``; see ``lint.py`` for the rule kinds.
"""

from __future__ import annotations

from collectguard.rules.clauses.lint import ClauseFinding, ClauseLinter, ClauseReport, lint_clauses

__all__ = ["ClauseFinding", "ClauseLinter", "ClauseReport", "lint_clauses"]
