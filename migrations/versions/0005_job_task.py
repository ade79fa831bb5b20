"""the task a job belongs to (issue 18)

``job.task`` names the task that recorded the job's outcome (``newsclass.ingest_article`` or
``newsclass.reclassify_articles``, worker/names.py), so ``jobs retry`` need not guess from the
payload's shape which task to send a failed job to again. Nullable: jobs recorded before this
revision have none. Adding a nullable column is a plain ALTER on both databases.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.add_column(sa.Column("task", sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_column("task")
