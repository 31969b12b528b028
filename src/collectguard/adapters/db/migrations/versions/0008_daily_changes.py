"""daily run change tracking: loan.next_event_on, the loan_change journal (PostgreSQL triggers),
room for in-place updates of cases

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 09:00:00

The daily run on PostgreSQL re-derives only the loans whose balances can have moved since its
last run (services/daily_pg.py). Two things tell it which:
- ``loan.next_event_on``: the first date after the run's date on which the calendar alone moves
  the loan's balances (an installment falls due, a payment dated later starts to count);
- ``loan_change``: the ids of loans whose installments or payments were inserted, changed or
  deleted, written by statement-level triggers (one INSERT per statement, from its transition
  tables; no per-row trigger) and emptied by the run that takes them into account.
On SQLite neither trigger exists and the table stays empty: the run there does not read it.

``fillfactor`` 50 on ``collection_case`` (as on ``loan`` since 0003) leaves room in each page, so
that the daily update of an open case's DPD is a heap-only update (no index entries, a fraction
of the WAL) once the table's pages have been written under it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TABLES = ("installment", "payment")
# One trigger per table and event; each copies the distinct loan ids of its transition table(s).
EVENTS = {
    "ins": ("INSERT", "REFERENCING NEW TABLE AS new_rows", "SELECT loan_id FROM new_rows"),
    "upd": (
        "UPDATE",
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "SELECT loan_id FROM old_rows UNION SELECT loan_id FROM new_rows",
    ),
    "del": ("DELETE", "REFERENCING OLD TABLE AS old_rows", "SELECT loan_id FROM old_rows"),
}


def upgrade() -> None:
    op.add_column("loan", sa.Column("next_event_on", sa.Date(), nullable=True))
    op.create_table("loan_change", sa.Column("loan_id", ID, nullable=False))
    if op.get_bind().dialect.name != "postgresql":
        return
    for kind, (_event, _ref, rows) in EVENTS.items():
        op.execute(f"""CREATE FUNCTION cg_loan_change_{kind}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO loan_change (loan_id) SELECT DISTINCT x.loan_id FROM ({rows}) x;
  RETURN NULL;
END $$""")  # noqa: S608 - fixed text
    for table in TABLES:
        for kind, (event, ref, _rows) in EVENTS.items():
            op.execute(
                f"CREATE TRIGGER tr_{table}_change_{kind} AFTER {event} ON {table} {ref} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION cg_loan_change_{kind}()"
            )
    op.execute("ALTER TABLE collection_case SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE collection_case RESET (fillfactor)")
        for table in TABLES:
            for kind in EVENTS:
                op.execute(f"DROP TRIGGER IF EXISTS tr_{table}_change_{kind} ON {table}")
        for kind in EVENTS:
            op.execute(f"DROP FUNCTION IF EXISTS cg_loan_change_{kind}()")
    op.drop_table("loan_change")
    with op.batch_alter_table("loan") as batch:
        batch.drop_column("next_event_on")
