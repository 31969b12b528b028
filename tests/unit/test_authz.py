"""Authorization without a database: the permission table, scoping predicates, visibility of loaded
objects, and the building blocks of the API's abuse resistance (signed values, the rate limiter)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import sqlite

from collectguard.adapters.db.models import Borrower, Case, Clause, Contact, Loan
from collectguard.api.deps import is_public, sign, unsign
from collectguard.api.ratelimit import TokenBucketLimiter
from collectguard.errors import BadInput, Forbidden, NotFound
from collectguard.services.authz import (
    ALL_PERMISSIONS,
    MACHINE_ROLES,
    PERMISSIONS,
    ROLES,
    STAFF_ROLES,
    Principal,
    can,
    ensure_visible,
    require,
    role_validate,
    scope_cases,
    scope_contacts,
    scope_tenant,
    visible_contacts,
)

LENDER, OTHER, AGENCY = 1, 2, 3


def p(role: str, *, tenant: int = LENDER, borrower: int | None = None) -> Principal:
    return Principal(tenant_id=tenant, tenant_code=f"t{tenant}", role=role, user_id=10, borrower_id=borrower,
                     agency_tenant_id=tenant if tenant == AGENCY else None)


def sql(stmt) -> str:
    """The WHERE clause of ``stmt`` as SQLite would run it."""
    text = str(stmt.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    return text.split("WHERE", 1)[1]


def case(tenant: int = LENDER, *, borrower: int = 100, agency: int | None = None) -> Case:
    return Case(id=1, tenant_id=tenant, loan_id=7, borrower_id=borrower, agency_tenant_id=agency,
                status="open", bucket="M1", dpd=5, opened_on=dt.date(2026, 4, 1))


# ---- the permission table ---------------------------------------------------------------------------

def test_every_role_has_a_row_and_every_row_is_a_known_role():
    assert set(PERMISSIONS) == set(ROLES)
    assert all(PERMISSIONS[r] <= ALL_PERMISSIONS for r in ROLES)


@pytest.mark.parametrize(("role", "permission", "allowed"), [
    ("collector", "guard.check", True),
    ("agency_collector", "attempt.create", True),
    ("collector", "contact_list.read", False),       # DESIGN §11: collectors never see a contact list
    ("agency_collector", "contact_list.read", False),
    ("team_lead", "contact_list.read", False),
    ("compliance_officer", "contact_list.read", True),
    ("auditor", "attempt.create", False),             # auditors read, never act
    ("auditor", "audit.verify", True),
    ("borrower", "guard.check", False),
    ("borrower", "rights.request", True),
    ("admin", "account.manage", True),
    ("compliance_officer", "account.manage", False),
    ("admin", "pii.read", False),                     # administering accounts needs no personal data
])
def test_permission_table(role, permission, allowed):
    assert can(p(role), permission) is allowed


@pytest.mark.parametrize(("permission", "holders"), [
    ("allocation.run", {"admin", "team_lead"}),
    ("hold.manage", {"admin", "team_lead"}),
    ("stop.manage", {"admin", "team_lead", "compliance_officer"}),
    ("stop.lift", {"compliance_officer"}),
    ("template.write", {"admin", "team_lead", "compliance_officer"}),
    ("template.approve", {"compliance_officer"}),                  # never the authors' own roles alone
    ("legal_action.record", {"admin", "compliance_officer"}),
    ("approval.decide", {"team_lead", "compliance_officer"}),       # limits per role: approvals.yaml
    ("payment.record", {"admin", "integration"}),
    ("contact.write", {"team_lead", "collector", "agency_collector", "compliance_officer", "borrower"}),
])
def test_collection_operations_have_permissions_of_their_own(permission, holders):
    assert {r for r in ROLES if permission in PERMISSIONS[r]} == holders


def test_no_collector_or_auditor_runs_operations():
    ops = {"allocation.run", "hold.manage", "stop.manage", "stop.lift", "template.write", "template.approve",
           "legal_action.record", "approval.decide", "payment.record"}
    assert not ops & PERMISSIONS["collector"] and not ops & PERMISSIONS["auditor"]
    assert not ops & PERMISSIONS["agency_collector"]


def test_the_integration_role_is_a_machine_that_only_reports_payments():
    assert PERMISSIONS["integration"] == {"me.read", "payment.record"}
    assert "integration" not in STAFF_ROLES and "integration" in MACHINE_ROLES
    assert role_validate("integration") == "integration"


def test_only_admin_manages_accounts():
    assert [r for r in ROLES if "account.manage" in PERMISSIONS[r]] == ["admin"]


def test_every_role_may_ask_who_it_is():
    assert all("me.read" in PERMISSIONS[r] for r in ROLES)


def test_require_raises_forbidden_naming_the_permission():
    require(p("collector"), "guard.check")
    with pytest.raises(Forbidden) as exc:
        require(p("borrower"), "guard.check")
    assert exc.value.detail == {"permission": "guard.check"}


def test_an_unknown_permission_is_a_programming_error_not_a_silent_answer():
    with pytest.raises(ValueError, match="unknown permission"):
        require(p("admin"), "guard.chekc")


def test_an_unknown_role_holds_nothing():
    assert not can(Principal(tenant_id=1, tenant_code="t", role="root"), "me.read")


def test_role_validate_names_the_valid_roles():
    assert role_validate("auditor") == "auditor"
    with pytest.raises(BadInput) as exc:
        role_validate("superuser")
    assert exc.value.field == "role" and "agency_collector" in exc.value.message


def test_principal_is_frozen_and_names_its_actor():
    principal = p("collector")
    with pytest.raises(AttributeError):
        principal.role = "admin"  # type: ignore[misc]
    assert principal.actor == "user:10"
    assert Principal(tenant_id=1, tenant_code="t", role="auditor", token_id=4).actor == "token:4"


# ---- query scoping ----------------------------------------------------------------------------------

def test_scope_cases_isolates_tenants():
    text = sql(scope_cases(select(Case), p("collector")))
    assert "collection_case.tenant_id = 1" in text


def test_scope_cases_agency_sees_only_cases_assigned_to_it():
    text = sql(scope_cases(select(Case), p("agency_collector", tenant=AGENCY)))
    assert "collection_case.agency_tenant_id = 3" in text and "collection_case.tenant_id" not in text


def test_scope_cases_borrower_sees_only_their_own():
    text = sql(scope_cases(select(Case), p("borrower", borrower=100)))
    assert "collection_case.borrower_id = 100" in text and "collection_case.tenant_id = 1" in text


def test_a_borrower_without_a_borrower_record_sees_nothing():
    assert sql(scope_cases(select(Case), p("borrower"))).strip() in ("0 = 1", "false")


def test_scope_tenant_agency_reaches_borrowers_and_loans_only_through_open_cases():
    agency = p("agency_collector", tenant=AGENCY)
    borrowers = sql(scope_tenant(select(Borrower), Borrower, agency))
    assert "borrower.id IN (SELECT collection_case.borrower_id" in borrowers
    assert "collection_case.status = 'open'" in borrowers
    assert "loan.id IN (SELECT collection_case.loan_id" in sql(scope_tenant(select(Loan), Loan, agency))


def test_scope_tenant_tenant_level_rows_follow_the_tenant():
    assert "clause.tenant_id = 1" in sql(scope_tenant(select(Clause), Clause, p("borrower", borrower=5)))


def test_scope_contacts_hides_contact_lists_from_collectors_only():
    assert "contact.source != 'contact_list'" in sql(scope_contacts(select(Contact), p("collector")))
    assert "contact_list" not in sql(scope_contacts(select(Contact), p("compliance_officer")))


# ---- visibility of loaded objects -------------------------------------------------------------------

def test_ensure_visible_returns_the_object_in_the_own_tenant():
    c = case()
    assert ensure_visible(c, p("collector")) is c


@pytest.mark.parametrize("principal", [
    p("collector", tenant=OTHER),                 # another lender
    p("admin", tenant=OTHER),
    p("agency_collector", tenant=AGENCY),         # not assigned to this agency
    p("borrower", borrower=999),                  # someone else's case
])
def test_foreign_objects_are_not_found_never_forbidden(principal):
    with pytest.raises(NotFound):
        ensure_visible(case(), principal)


def test_none_is_not_found():
    with pytest.raises(NotFound):
        ensure_visible(None, p("admin"))


def test_agency_sees_the_case_assigned_to_it():
    assert ensure_visible(case(agency=AGENCY), p("agency_collector", tenant=AGENCY))


def test_agency_needs_a_session_to_see_borrower_rows_so_it_fails_closed_without_one():
    b = Borrower(id=100, tenant_id=LENDER)
    with pytest.raises(NotFound):
        ensure_visible(b, p("agency_collector", tenant=AGENCY))


def test_borrower_sees_their_own_record_only():
    assert ensure_visible(Borrower(id=100, tenant_id=LENDER), p("borrower", borrower=100))
    with pytest.raises(NotFound):
        ensure_visible(Borrower(id=101, tenant_id=LENDER), p("borrower", borrower=100))


def test_contact_list_contacts_are_invisible_to_collectors():
    listed = Contact(id=1, tenant_id=LENDER, borrower_id=100, source="contact_list")
    designated = Contact(id=2, tenant_id=LENDER, borrower_id=100, source="borrower_designated")
    with pytest.raises(NotFound):
        ensure_visible(listed, p("collector"))
    assert ensure_visible(listed, p("compliance_officer")) is listed
    assert visible_contacts([listed, designated], p("team_lead")) == [designated]
    assert visible_contacts([listed, designated], p("auditor")) == [listed, designated]
    agency_auditor = p("auditor", tenant=AGENCY)  # holds contact_list.read, but works for an agency
    assert visible_contacts([listed, designated], agency_auditor) == [designated]
    assert "contact.source != 'contact_list'" in sql(scope_contacts(select(Contact), agency_auditor))


def test_rows_without_a_tenant_are_a_programming_error():
    from collectguard.adapters.db.models import Installment

    with pytest.raises(TypeError, match="tenant_id"):
        ensure_visible(Installment(id=1, loan_id=1), p("admin"))


# ---- building blocks of the API's abuse resistance --------------------------------------------------

def test_signed_values_reject_tampering_and_other_purposes():
    signed = sign("k" * 32, "session", "abc")
    assert unsign("k" * 32, "session", signed) == "abc"
    assert unsign("k" * 32, "csrf", signed) is None
    assert unsign("x" * 32, "session", signed) is None
    assert unsign("k" * 32, "session", "abd" + signed[3:]) is None
    assert unsign("k" * 32, "session", None) is None and unsign("k" * 32, "session", "nodot") is None


@pytest.mark.parametrize(("path", "public"), [
    ("/health", True), ("/api/v1/assess", True), ("/static/app.css", True), ("/", True),
    ("/self-check", True), ("/signin", True), ("/api/v1/me", False), ("/api/v1/assessments", False),
    ("/portal/loans", False), ("/work", False), ("/healthz", False),
])
def test_public_paths_are_an_explicit_list(path, public):
    assert is_public(path) is public


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_token_bucket_allows_a_burst_then_refills_at_the_rate():
    clock = FakeClock()
    limiter = TokenBucketLimiter(clock=clock)
    assert all(limiter.hit("ip", 10) is None for _ in range(10))
    wait = limiter.hit("ip", 10)
    assert wait is not None and 5.9 < wait <= 6.0           # one token every 6 s at 10/min
    assert limiter.hit("other-ip", 10) is None               # buckets are per key
    clock.t += 6.0
    assert limiter.hit("ip", 10) is None
    assert limiter.hit("ip", 10) is not None


def test_token_bucket_zero_switches_the_limit_off():
    limiter = TokenBucketLimiter(clock=FakeClock())
    assert all(limiter.hit("ip", 0) is None for _ in range(100))


def test_token_bucket_memory_is_bounded():
    clock = FakeClock()
    limiter = TokenBucketLimiter(clock=clock, max_keys=100)
    for i in range(1000):
        limiter.hit(f"k{i}", 5)
        clock.t += 0.01
    assert len(limiter._buckets) <= 100


def test_the_permission_table_in_docs_matches_the_code():
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "security.md").read_text(encoding="utf-8")
    table = doc.split("<!-- permission-table:start -->")[1].split("<!-- permission-table:end -->")[0]
    rows = [line.strip("|").split("|") for line in table.strip().splitlines()[2:]]
    documented = {cells[0].strip().strip("`"): [c.strip() == "✓" for c in cells[1:]] for cells in rows}
    assert documented == {perm: [perm in PERMISSIONS[r] for r in ROLES] for perm in ALL_PERMISSIONS}


def test_borrowers_see_published_tenant_rows_but_not_staff_ones():
    from collectguard.adapters.db.models import AuditRecord, User

    borrower = p("borrower", borrower=100)
    assert ensure_visible(Clause(id=1, tenant_id=LENDER), borrower)
    for staff_only in (User(id=1, tenant_id=LENDER), AuditRecord(id=1, tenant_id=LENDER)):
        with pytest.raises(NotFound):
            ensure_visible(staff_only, borrower)
        assert ensure_visible(staff_only, p("auditor")) is staff_only
    assert sql(scope_tenant(select(AuditRecord), AuditRecord, borrower)).strip() in ("0 = 1", "false")
    assert "app_user.borrower_id = 100" in sql(scope_tenant(select(User), User, borrower))  # their own login
