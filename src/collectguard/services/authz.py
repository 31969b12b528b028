"""Who may do what, and which rows they may see (DESIGN §11).

Two independent gates, both deny by default:

- **Permissions** — ``require(principal, "guard.check")``: the permission table below is data, one
  set of permission names per role. An unknown permission name is a programming error (``ValueError``),
  so a typo fails loudly instead of silently allowing or denying.
- **Visibility** — ``scope_cases``/``scope_tenant``/``scope_contacts`` add the tenant-isolation
  predicates to a query; ``ensure_visible`` checks one loaded object. A foreign object raises
  ``NotFound``, never ``Forbidden``: a 403 would confirm that the id exists in another tenant.

Agencies (委外催收机构) are tenants of kind ``agency``. Their users see the cases assigned to the agency
(``collection_case.agency_tenant_id``), and the borrower's data and the loan only while such a case is
open: entrusted processing (PIPL art. 21) ends when the lender takes the case back or closes it.
Collectors and agencies never see contact-list (通讯录) contacts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, false, select
from sqlalchemy.orm import Session

from collectguard.adapters.db.models import Borrower, Case, Clause, Contact, Loan
from collectguard.errors import BadInput, Forbidden, NotFound

ROLES = ("admin", "compliance_officer", "team_lead", "collector", "agency_collector", "auditor", "borrower",
         "integration")
# ``integration``: a machine account of the lender (its payment system), for API tokens only. It is
# not a person, so it gets none of the grants every person has: it reports payments and nothing else.
MACHINE_ROLES = frozenset({"integration"})
STAFF_ROLES = frozenset(ROLES) - {"borrower"} - MACHINE_ROLES
_WORKERS = frozenset({"team_lead", "collector", "agency_collector"})  # roles that contact borrowers
_ALL = frozenset(ROLES) - MACHINE_ROLES  # every person


def _roles(*names: str) -> frozenset[str]:
    return frozenset(names)


# permission -> roles holding it. Written this way round because reviewers ask "who can do X?".
_GRANTS: dict[str, frozenset[str]] = {
    "me.read": _ALL | MACHINE_ROLES,
    "apr.compute": _ALL,
    "guard.check": _WORKERS | {"admin", "compliance_officer"},
    "attempt.create": _WORKERS,
    "attempt.outcome": _WORKERS,
    "attempt.read": _WORKERS | {"compliance_officer", "auditor"},
    "case.read": _ALL,
    "case.assign": _roles("admin", "team_lead"),
    "loan.read": _ALL,
    "borrower.read": _ALL,  # masked view
    "pii.read": _WORKERS | {"compliance_officer", "borrower"},  # unmasked, every read audited
    "contact.read": _WORKERS | {"compliance_officer", "auditor", "borrower"},
    "contact_list.read": _roles("compliance_officer", "auditor", "borrower"),
    "consent.read": _ALL,
    "consent.write": _roles("compliance_officer", "borrower"),
    "complaint.create": _roles("borrower", "compliance_officer", "team_lead", "collector"),
    "complaint.read": _roles("compliance_officer", "team_lead", "auditor", "borrower"),
    "complaint.resolve": _roles("compliance_officer"),
    "ptp.create": _WORKERS | {"borrower"},
    "plan.request": _WORKERS | {"borrower"},
    "plan.approve": _roles("team_lead", "compliance_officer"),  # hardship relief, resuming a case
    # Collection operations (docs/operations.md). Waivers, plans and extensions are decided under
    # maker-checker within the role's limits (policy/allocation/approvals.yaml).
    "approval.decide": _roles("team_lead", "compliance_officer"),
    "allocation.run": _roles("admin", "team_lead"),  # allocation rules, dry run, apply
    "hold.manage": _roles("admin", "team_lead"),  # 留案: take a case from every holder, release it
    "stop.manage": _roles("admin", "team_lead", "compliance_officer"),  # 停催: set a stop
    "stop.lift": _roles("compliance_officer"),  # ending a stop early is compliance's call
    "template.write": _roles("admin", "team_lead", "compliance_officer"),  # draft and lint templates
    "template.approve": _roles("compliance_officer"),  # review: approve or reject, never one's own
    "legal_action.record": _roles("admin", "compliance_officer"),
    "contact.write": _WORKERS | {"compliance_officer", "borrower"},  # borrower-designated numbers only
    "payment.record": _roles("admin", "integration"),  # the lender's payment system reports payments
    "rights.request": _roles("borrower"),
    "rights.handle": _roles("compliance_officer"),
    "portfolio.read": _roles("admin", "compliance_officer", "team_lead", "auditor"),
    "dashboard.compliance": _roles("admin", "compliance_officer", "auditor"),
    "decision.read": _roles("compliance_officer", "team_lead", "auditor"),
    "audit.read": _roles("compliance_officer", "auditor"),
    "audit.verify": _roles("admin", "compliance_officer", "auditor"),
    "audit.export": _roles("compliance_officer", "auditor"),
    "clauses.lint": _roles("admin", "compliance_officer", "auditor"),
    "qa.run": _roles("compliance_officer", "team_lead", "auditor"),
    "import.run": _roles("admin"),
    "daily.run": _roles("admin"),
    "account.manage": _roles("admin"),
}

PERMISSIONS: Mapping[str, frozenset[str]] = {
    role: frozenset(p for p, holders in _GRANTS.items() if role in holders) for role in ROLES
}
"""The permission table: role -> the permission names it holds."""

ALL_PERMISSIONS = frozenset(_GRANTS)

# Tenant-level tables (no borrower column) a borrower may read: what the lender publishes to customers.
# Everything else tenant-wide (users, tokens, the audit chain) stays with the tenant's staff.
BORROWER_SHARED_MODELS: tuple[type, ...] = (Clause,)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller. ``agency_tenant_id`` is set for users of an agency tenant."""

    tenant_id: int
    tenant_code: str
    role: str
    user_id: int | None = None
    borrower_id: int | None = None
    agency_tenant_id: int | None = None
    token_id: int | None = None
    username: str | None = None

    @property
    def actor(self) -> str:
        """The audit ``actor`` string: ``user:<id>`` or ``token:<id>`` (service tokens)."""
        if self.user_id is not None:
            return f"user:{self.user_id}"
        return f"token:{self.token_id}" if self.token_id is not None else f"{self.role}@{self.tenant_code}"

    @property
    def permissions(self) -> frozenset[str]:
        return PERMISSIONS.get(self.role, frozenset())


def role_validate(role: str) -> str:
    """Return ``role`` when it is a known role, else raise ``BadInput`` naming the valid ones."""
    if role not in ROLES:
        raise BadInput(f"unknown role {role!r}; expected one of {', '.join(ROLES)}", field="role")
    return role


def can(principal: Principal, permission: str) -> bool:
    """Whether ``principal`` holds ``permission``."""
    if permission not in ALL_PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")
    return permission in principal.permissions


def require(principal: Principal, permission: str) -> None:
    """Raise ``Forbidden`` unless ``principal`` holds ``permission``."""
    if not can(principal, permission):
        raise Forbidden(f"role {principal.role!r} may not {permission}", detail={"permission": permission})


# ---- row visibility -------------------------------------------------------------------------------

S = TypeVar("S", bound=Select[Any])
T = TypeVar("T")


def _agency_open_cases(agency_tenant_id: int) -> Select[Any]:
    return select(Case).where(Case.agency_tenant_id == agency_tenant_id, Case.status == "open")


def scope_cases(stmt: S, principal: Principal) -> S:
    """Restrict a query over ``Case`` to the cases ``principal`` may see."""
    if principal.role == "borrower":
        if principal.borrower_id is None:
            return stmt.where(false())
        return stmt.where(Case.tenant_id == principal.tenant_id, Case.borrower_id == principal.borrower_id)
    if principal.agency_tenant_id is not None:
        return stmt.where(Case.agency_tenant_id == principal.agency_tenant_id)
    return stmt.where(Case.tenant_id == principal.tenant_id)


def _borrower_column(model: Any) -> Any:
    if model is Borrower:
        return Borrower.id
    return getattr(model, "borrower_id", None)


def scope_tenant(stmt: S, model: Any, principal: Principal) -> S:
    """Restrict a query over ``model`` (any table with ``tenant_id``) to rows ``principal`` may see.

    Rows that belong to a borrower (``borrower_id``, or ``Borrower`` itself) are limited to the
    borrower's own for a borrower, and to borrowers with an open case at the agency for agency users;
    ``Loan`` rows to the loans of those open cases. Tenant-level rows follow the tenant for staff; a
    borrower sees only those of ``BORROWER_SHARED_MODELS``.
    """
    if model is Case:
        return scope_cases(stmt, principal)
    borrower_col = _borrower_column(model)
    if principal.role == "borrower":
        if borrower_col is None:
            if model in BORROWER_SHARED_MODELS:
                return stmt.where(model.tenant_id == principal.tenant_id)
            return stmt.where(false())
        if principal.borrower_id is None:
            return stmt.where(false())
        return stmt.where(model.tenant_id == principal.tenant_id, borrower_col == principal.borrower_id)
    if principal.agency_tenant_id is not None:
        cases = _agency_open_cases(principal.agency_tenant_id)
        if model is Loan:
            return stmt.where(Loan.id.in_(cases.with_only_columns(Case.loan_id)))
        if borrower_col is not None:
            return stmt.where(borrower_col.in_(cases.with_only_columns(Case.borrower_id)))
        return stmt.where(model.tenant_id == principal.tenant_id)
    return stmt.where(model.tenant_id == principal.tenant_id)


def scope_contacts(stmt: S, principal: Principal) -> S:
    """``scope_tenant`` for ``Contact``, minus contact-list contacts for roles that may not see them."""
    stmt = scope_tenant(stmt, Contact, principal)
    if not _sees_contact_lists(principal):
        stmt = stmt.where(Contact.source != "contact_list")
    return stmt


def visible_contacts(contacts: Iterable[Contact], principal: Principal) -> list[Contact]:
    """Drop contact-list contacts from already loaded ``contacts`` unless ``principal`` may see them."""
    if _sees_contact_lists(principal):
        return list(contacts)
    return [c for c in contacts if c.source != "contact_list"]


def ensure_visible(obj: T | None, principal: Principal, *, session: Session | None = None) -> T:
    """Return ``obj`` when ``principal`` may see it; otherwise (or when ``None``) raise ``NotFound``.

    Agency visibility of borrower-owned rows needs a database look-up: pass ``session``, without it
    such rows are not visible (fail closed).
    """
    if obj is None or not _visible(obj, principal, session):
        raise NotFound("no such object")
    return obj


def _sees_contact_lists(principal: Principal) -> bool:
    # Never an agency, whatever its role: a contact list is not a lawful source to hand to an agency.
    return principal.agency_tenant_id is None and can(principal, "contact_list.read")


def _visible(obj: Any, principal: Principal, session: Session | None) -> bool:
    if not hasattr(obj, "tenant_id"):
        raise TypeError(f"{type(obj).__name__} has no tenant_id: check the row it belongs to (e.g. its Loan)")
    if isinstance(obj, Contact) and obj.source == "contact_list" and not _sees_contact_lists(principal):
        return False
    if isinstance(obj, Case):
        if principal.role == "borrower":
            return obj.tenant_id == principal.tenant_id and obj.borrower_id == principal.borrower_id
        if principal.agency_tenant_id is not None:
            return obj.agency_tenant_id == principal.agency_tenant_id
        return obj.tenant_id == principal.tenant_id
    borrower_id = obj.id if isinstance(obj, Borrower) else getattr(obj, "borrower_id", None)
    has_borrower = isinstance(obj, Borrower) or hasattr(obj, "borrower_id")
    if principal.role == "borrower":
        if not has_borrower:
            return bool(obj.tenant_id == principal.tenant_id) and isinstance(obj, BORROWER_SHARED_MODELS)
        return (obj.tenant_id == principal.tenant_id and principal.borrower_id is not None
                and borrower_id == principal.borrower_id)
    if principal.agency_tenant_id is not None:
        if not has_borrower:
            return bool(obj.tenant_id == principal.tenant_id)
        if session is None or borrower_id is None:
            return False
        cond = Case.loan_id == obj.id if isinstance(obj, Loan) else Case.borrower_id == borrower_id
        open_case = _agency_open_cases(principal.agency_tenant_id).where(cond)
        return bool(session.scalar(select(open_case.exists())))
    return bool(obj.tenant_id == principal.tenant_id)
