"""full-text search and query indexes (issue 5)

Full text, kept in sync by the database itself (no application code writes it):
- SQLite: an FTS5 table ``article_fts`` over ``article`` (external content, porter stemming) and
  three triggers. A later migration that rebuilds ``article`` with batch mode must recreate them.
- PostgreSQL: a generated ``search_vector`` tsvector column (title weighted A, text B; the text is
  cut at SEARCH_TEXT_CHARS so a huge article cannot exceed the 1 MB tsvector limit) with a GIN index.

Time queries: an expression index on ``coalesce(published_at, ingested_at)`` (the "published, else
ingested" time that filters and sorting use) and one on ``(source, ingested_at)``.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCH_TEXT_CHARS = 500_000

SQLITE_UP = [
    """CREATE VIRTUAL TABLE article_fts USING fts5(
        title, text, content='article', content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER article_fts_insert AFTER INSERT ON article BEGIN
        INSERT INTO article_fts(rowid, title, text) VALUES (new.id, new.title, new.text);
    END""",
    """CREATE TRIGGER article_fts_delete AFTER DELETE ON article BEGIN
        INSERT INTO article_fts(article_fts, rowid, title, text)
        VALUES ('delete', old.id, old.title, old.text);
    END""",
    """CREATE TRIGGER article_fts_update AFTER UPDATE OF title, text ON article BEGIN
        INSERT INTO article_fts(article_fts, rowid, title, text)
        VALUES ('delete', old.id, old.title, old.text);
        INSERT INTO article_fts(rowid, title, text) VALUES (new.id, new.title, new.text);
    END""",
    "INSERT INTO article_fts(article_fts) VALUES ('rebuild')",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS article_fts_update",
    "DROP TRIGGER IF EXISTS article_fts_delete",
    "DROP TRIGGER IF EXISTS article_fts_insert",
    "DROP TABLE IF EXISTS article_fts",
]
POSTGRES_UP = [
    f"""ALTER TABLE article ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A')
        || setweight(to_tsvector('english'::regconfig, left(text, {SEARCH_TEXT_CHARS})), 'B')
    ) STORED""",
    "CREATE INDEX ix_article_search_vector ON article USING gin (search_vector)",
]
POSTGRES_DOWN = [
    "DROP INDEX IF EXISTS ix_article_search_vector",
    "ALTER TABLE article DROP COLUMN IF EXISTS search_vector",
]
COMMON_UP = [
    "CREATE INDEX ix_article_effective_time ON article (coalesce(published_at, ingested_at), id)",
    "CREATE INDEX ix_article_source_ingested ON article (source, ingested_at)",
]
COMMON_DOWN = [
    "DROP INDEX IF EXISTS ix_article_source_ingested",
    "DROP INDEX IF EXISTS ix_article_effective_time",
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in (SQLITE_UP if dialect == "sqlite" else POSTGRES_UP) + COMMON_UP:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in COMMON_DOWN + (SQLITE_DOWN if dialect == "sqlite" else POSTGRES_DOWN):
        op.execute(statement)
