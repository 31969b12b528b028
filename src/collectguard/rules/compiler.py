"""Compiling a pack: every rule, once per period in which all of the pack's dates are constant.

The dates in a pack (rules' and citations' ``effective_from``/``effective_to``, dated thresholds)
cut time into *periods*. Each rule is compiled once per period: a kind then sees plain threshold
values, rules not in force are left out, and each rule's ``Violation`` (with the citations in
force) is built in advance. Every period is compiled in full, so a bad param fails at start-up
whatever its dates.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import NamedTuple, get_args

from collectguard.domain.event import Role, Violation
from collectguard.policy.loader import PackError, PackSpec, RuleSpec
from collectguard.rules.facts import Key, Pred, Split, StaticPred, compile_conditions
from collectguard.rules.kinds import KINDS, CompileContext
from collectguard.rules.params import Params, param_dates

__all__ = ["CompiledRule", "compile_periods"]


class CompiledRule(NamedTuple):
    """One rule compiled for one period.

    ``static`` decides from the selection ``Key`` whether the rule can apply at all (``None``:
    always) and ``needs`` names the feature bits it cannot be broken without; ``test`` decides per
    event whether it is broken (``None``: broken whenever selected). A kind may instead ``bind``
    per ``Key``; ``wrap`` then adds the ``applies_when`` gate around the bound check.
    ``violation`` is the precomputed violation and its JSON.
    """

    id: str
    deny: bool
    static: StaticPred | None
    needs: int
    test: Pred | None
    bind: Callable[[Key], Pred | bool] | None
    wrap: Callable[[Pred | None], Pred | None]
    violation: tuple[Violation, str]


def _in_force(day: date, start: date | None, stop: date | None) -> bool:
    # effective_to is exclusive: the day a successor takes effect.
    return (start is None or start <= day) and (stop is None or day < stop)


def _violation(spec: RuleSpec, day: date) -> tuple[Violation, str]:
    ids = tuple(c.id for c in spec.citations if _in_force(day, c.effective_from, c.effective_to))
    v = Violation(rule=spec.id, citations=ids, message_zh=spec.message_zh, message_en=spec.message_en)
    return v, v.model_dump_json()


def _both(a: StaticPred | None, b: StaticPred | None) -> StaticPred | None:
    if a is None or b is None:
        return a or b
    return lambda k: a(k) and b(k)


def _compile_rule(spec: RuleSpec, ctx: CompileContext, day: date) -> CompiledRule:
    where = f"rule {spec.id}"
    make_check = KINDS.get(spec.kind)
    if make_check is None:
        raise PackError(f"{where}: unknown kind {spec.kind!r} (known: {', '.join(sorted(KINDS))})")
    ctx.where = where
    params = Params(spec.params, where=where, day=day)
    made = make_check(params, ctx)
    params.finish()
    kind_static, check, kind_needs, bind = made if isinstance(made, Split) else Split(None, made)
    gate_static, gate, gate_needs, _ = compile_conditions(spec.applies_when, where=where, debtor_roles=ctx.debtor_roles)

    def wrap(inner: Pred | None) -> Pred | None:
        if gate is None:
            return inner
        g = gate
        return g if inner is None else (lambda f: g(f) and inner(f))

    return CompiledRule(
        spec.id,
        spec.effect == "deny",
        _both(gate_static, kind_static),
        kind_needs | gate_needs,
        wrap(check),
        bind,
        wrap,
        _violation(spec, day),
    )


def compile_periods(spec: PackSpec) -> tuple[list[date], list[tuple[CompiledRule, ...]]]:
    """(period start dates after the first, the rules in force in each period, in pack order).

    Raises ``PackError`` for an unknown kind, param, fact or role, and for a deny rule in force
    on a day when none of its citations is.
    """
    unknown = set(spec.debtor_roles) - set(get_args(Role))
    if unknown:
        raise PackError(f"pack {spec.pack}: debtor_roles has unknown roles {sorted(unknown)}")
    cut_set: set[date] = set()
    for r in spec.rules:
        cut_set |= {d for d in (r.effective_from, r.effective_to) if d is not None}
        cut_set |= {d for c in r.citations for d in (c.effective_from, c.effective_to) if d is not None}
        cut_set |= param_dates(r.params)
    cuts = sorted(cut_set)
    periods: list[tuple[CompiledRule, ...]] = []
    for day in [date.min, *cuts]:
        ctx = CompileContext(where=f"pack {spec.pack}", debtor_roles=frozenset(spec.debtor_roles))
        compiled: list[CompiledRule] = []
        for r in spec.rules:
            rule = _compile_rule(r, ctx, day)
            if _in_force(day, r.effective_from, r.effective_to):
                if rule.deny and r.verification != "policy" and not rule.violation[0].citations:
                    # A refusal must always name its basis: give the rule an effective_from.
                    raise PackError(f"rule {r.id}: in force on {day} with none of its citations in force")
                compiled.append(rule)
            ctx.earlier_rules.add(r.id)
        periods.append(tuple(compiled))
    return cuts, periods
