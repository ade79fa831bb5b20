"""Apply the Alembic migrations to the configured database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config


def migrations_dir() -> Path:
    """The migrations: beside the package in a checkout, inside it in an installed wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "migrations", here / "_migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError("newsclass migrations not found")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def current(database_url: str) -> str | None:
    from alembic.migration import MigrationContext

    from worker.store import get_engine

    with get_engine(database_url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
