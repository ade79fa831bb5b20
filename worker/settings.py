"""One typed settings object, read from the environment (prefix ``NEWSCLASS_``) and built once.

A bad value is a clear error at start-up (``SettingsError``), never a stack trace at the first job.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

BROKER_SCHEMES = ("redis://", "rediss://", "redis+socket://", "amqp://", "amqps://", "pyamqp://")
DATABASE_SCHEMES = ("sqlite", "postgresql")
SECRET_BEARING = ("broker_url", "database_url")


def _default_model_path() -> Path:
    from classifiers import default_model_path

    return default_model_path()


class SettingsError(RuntimeError):
    """A setting has a bad value; the message names the variable and what is wrong."""


class Settings(BaseSettings):
    """Every knob of newsclass. Each field is the variable ``NEWSCLASS_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="NEWSCLASS_", extra="ignore", frozen=True)

    broker_url: str = Field(
        "redis://localhost:6379/0", description="Celery broker: Redis (or RabbitMQ, amqp://)."
    )
    database_url: str = Field(
        "sqlite:///newsclass.db",
        description="SQLAlchemy URL of the results database (SQLite file or PostgreSQL).",
    )
    model_path: Path = Field(
        default_factory=lambda: _default_model_path(),
        description="skops model file; default: the model shipped in the package.",
    )
    broker_visibility_timeout: int = Field(
        3600,
        ge=5,
        le=7 * 24 * 3600,
        description="Seconds before an unacknowledged job is redelivered (Redis transport).",
    )
    log_level: LogLevel = Field("INFO", description="Log level of worker and commands.")
    batch_size: int = Field(
        200,
        ge=1,
        le=10_000,
        description="Most jobs a worker process classifies and stores at once.",
    )
    batch_wait: float = Field(
        0.25, gt=0, le=60, description="Seconds a worker waits to fill a batch before running it."
    )
    max_text_chars: int = Field(
        2_000_000, ge=1_000, description="Longest article text accepted (characters)."
    )
    max_batch_chars: int = Field(
        4_000_000,
        ge=1_000,
        description="Most article text one batch works on at once (characters): a batch of very "
        "long articles runs in parts, so a worker's memory stays bounded.",
    )
    max_retries: int = Field(
        8,
        ge=0,
        le=100,
        description="Tries of a job that fails for a passing reason (e.g. DB down).",
    )
    retry_backoff_max: float = Field(
        60.0, gt=0, description="Longest wait between retries (seconds; backoff has jitter)."
    )
    worker_max_tasks_per_child: int = Field(
        50_000,
        ge=0,
        description="Recycle a worker process after this many jobs (prefork: batches; 0: never).",
    )
    worker_max_memory_per_child: int = Field(
        600_000,
        ge=0,
        description="Recycle a worker process above this resident size (KiB; 0: off).",
    )
    allow_private_urls: bool = Field(
        False,
        description="Allow fetching loopback/private/link-local addresses (intranets, tests).",
    )
    fetch_timeout: float = Field(15.0, gt=0, le=300, description="Seconds a page fetch may take.")
    fetch_max_bytes: int = Field(5_000_000, ge=1_000, description="Largest page fetched (bytes).")
    fetch_max_redirects: int = Field(
        5, ge=0, le=20, description="Most redirects followed by one fetch (each hop is checked)."
    )
    fetch_contact: str | None = Field(
        None,
        description="URL or e-mail put in the User-Agent so site owners can reach the operator.",
    )
    beat_tick: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="Seconds between the beat's checks for due sources (one poll job per due source).",
    )
    source_every: int = Field(
        900, ge=1, description="Default seconds between two polls of a source (`sources add`)."
    )
    poll_lease: float = Field(
        300.0,
        ge=1,
        description="Seconds a started poll holds its source; past it the source may be polled again.",
    )
    source_max_failures: int = Field(
        5, ge=1, le=1000, description="Failed polls in a row that pause a source (with the reason)."
    )
    source_backoff_max: float = Field(
        3600.0, gt=0, description="Longest wait before polling a failing source again (seconds)."
    )
    ready_file: Path | None = Field(
        None, description="File the worker writes once it consumes (for health checks)."
    )
    api_token: SecretStr | None = Field(
        None, description="Bearer token that enables POST /jobs on the HTTP API (off when unset)."
    )

    @field_validator("broker_url")
    @classmethod
    def _broker_scheme(cls, value: str) -> str:
        if not value.startswith(BROKER_SCHEMES):
            raise ValueError(f"must start with one of {', '.join(BROKER_SCHEMES)}")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str) -> str:
        scheme = value.split(":", 1)[0].split("+", 1)[0]
        if scheme not in DATABASE_SCHEMES or "://" not in value:
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value

    @field_validator("model_path")
    @classmethod
    def _model_exists(cls, value: Path) -> Path:
        if not value.is_file():
            raise ValueError(f"no model file at {value}")
        return value

    @property
    def log_level_number(self) -> int:
        return logging.getLevelNamesMapping()[self.log_level]


def load_settings(**overrides: object) -> Settings:
    """Build Settings from the environment, turning validation errors into one readable message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(part) for part in err["loc"])
            given = err.get("input")
            if field in SECRET_BEARING and isinstance(given, str):
                given = redact_url(given)  # a URL may carry a password: never print it
            elif field == "api_token":
                given = "***"
            lines.append(f"NEWSCLASS_{field.upper()}: {err['msg']} (got {given!r})")
        raise SettingsError("bad configuration:\n  " + "\n  ".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, built on first use."""
    return load_settings()


def redact_url(url: str) -> str:
    """The URL with any password replaced, for logs and messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1] if "@" in url else url
