"""``collectguard import`` and ``collectguard demo`` through the real command line, both backends."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from collectguard.adapters.db.models import Borrower, Loan, Tenant
from collectguard.cli import context
from collectguard.cli.main import main
from conftest import create_database

DATA = Path(__file__).parent.parent / "data"
KINDS = ("borrowers", "loans", "installments", "payments", "consents", "contacts")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request, tmp_path_factory):
    database = create_database(request.param, tmp_path_factory)
    yield database
    database.close()


@pytest.fixture
def cli(db, monkeypatch, capsys, tmp_path):
    """Run the CLI in this process (``main(argv)``): exit code and output exactly as a user sees them."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLLECTGUARD_DATABASE_URL", db.url)
    monkeypatch.setattr(context, "_CONTAINER", None)
    monkeypatch.setattr(context, "DATABASE_URL", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(""))
        with pytest.raises(SystemExit) as exit_:
            main(list(args))
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return subprocess.CompletedProcess(list(args), int(exit_.value.code or 0), out, err)

    yield run
    if context._CONTAINER is not None:  # the CLI's own engine: close its pooled connections
        context._CONTAINER.engine.dispose()


def borrowers_of(db, tenant: str) -> int:
    with db.engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(Borrower)
                           .join(Tenant, Tenant.id == Borrower.tenant_id).where(Tenant.code == tenant))


def test_the_real_entry_point_imports_and_rejects(db):
    env = {**os.environ, "COLLECTGUARD_DATABASE_URL": "sqlite:///unused.db"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "collectguard", "--database-url", db.url, *args],
                              capture_output=True, text=True, env=env, timeout=120, check=False)

    bad = run("import", "borrowers", str(DATA / "borrowers_bad_row.csv"), "--tenant", "sub")
    assert bad.returncode == 2 and bad.stdout == ""
    first = bad.stderr.splitlines()[0]
    assert first.startswith("error: ") and "row 3, column phone" in first
    assert "Traceback" not in bad.stderr
    assert borrowers_of(db, "sub") == 0
    ok = run("import", "borrowers", str(DATA / "borrowers.csv"), "--tenant", "sub")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == {"kind": "borrowers", "rows": 8, "tenant": "sub"}
    assert borrowers_of(db, "sub") == 8


def test_all_six_kinds_import_in_order(cli):
    for kind, rows in zip(KINDS, (8, 8, 22, 12, 7, 6), strict=True):
        result = cli("import", kind, str(DATA / f"{kind}.csv"), "--tenant", "six")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {"kind": kind, "rows": rows, "tenant": "six"}


def test_a_bad_file_exits_2_naming_row_and_column_and_stores_nothing(cli, db):
    result = cli("import", "borrowers", str(DATA / "borrowers_bad_row.csv"), "--tenant", "bad")
    assert result.returncode == 2 and result.stdout == ""
    assert "row 3, column phone" in result.stderr.splitlines()[0]
    assert borrowers_of(db, "bad") == 0


def test_contacts_from_a_contact_list_without_consent_are_refused(cli, tmp_path):
    assert cli("import", "borrowers", str(DATA / "borrowers.csv"), "--tenant", "cl").returncode == 0
    result = cli("import", "contacts", str(DATA / "contacts.csv"), "--tenant", "cl")
    assert result.returncode == 2
    assert "row 6, column source" in result.stderr and "PIPL" in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("import", "cases", "x.csv"), "unknown kind 'cases'"),
    (("import", "borrowers", "missing.csv"), "no such file"),
])
def test_usage_errors_exit_2_without_a_traceback(cli, args, message):
    result = cli(*args)
    assert result.returncode == 2 and message in result.stderr


def test_gbk_file_exits_2_with_advice(cli, tmp_path):
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes((DATA / "borrowers.csv").read_text("utf-8").encode("gbk"))
    result = cli("import", "borrowers", str(gbk), "--tenant", "gbk")
    assert result.returncode == 2 and "GBK" in result.stderr and "CSV UTF-8" in result.stderr


def test_demo_seeds_once(cli, db, tmp_path):
    with db.engine.connect() as conn:
        if conn.scalar(select(func.count()).select_from(Loan).join(Tenant, Tenant.id == Loan.tenant_id)
                       .where(Tenant.code == "demo-lender")):
            pytest.skip("demo-lender already seeded in this database")
    result = cli("demo", "--loans", "60", "--seed", "9")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["loans"] == 60 and summary["tenants"] == ["demo-lender", "demo-agency"]
    again = cli("demo", "--loans", "5")
    assert again.returncode == 2 and "already has loans" in again.stderr
