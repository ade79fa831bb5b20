"""Real services for integration tests: a Redis started per session, a SQLite file per test,
a fresh PostgreSQL database per test (where a server answers), and real worker processes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import redis
import sqlalchemy as sa
from typer.testing import CliRunner

from tests.conftest import service_missing
from worker import db
from worker.embedded import LocalRedis, WorkerProcess
from worker.settings import get_settings

POSTGRES_URL = os.environ.get(
    "NEWSCLASS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[LocalRedis]:
    with LocalRedis() as server:
        yield server


@pytest.fixture
def broker_url(redis_server: LocalRedis) -> str:
    redis.Redis(port=redis_server.port).flushall()
    return redis_server.url


def _postgres_admin() -> sa.Engine:
    return sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[sa.Engine]:
    engine = _postgres_admin()
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError as exc:
        service_missing(f"no PostgreSQL at {POSTGRES_URL}: {str(exc).splitlines()[0]}")
    yield engine
    engine.dispose()


@contextlib.contextmanager
def fresh_postgres_database(admin: sa.Engine) -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards."""
    name = f"newsclass_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    from worker.store import get_engine

    get_engine(url).dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: SQLite always, PostgreSQL where one answers."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'newsclass.db'}"
        db.upgrade(url)
        yield url
        return
    admin = request.getfixturevalue("postgres_admin")
    with fresh_postgres_database(admin) as url:
        db.upgrade(url)
        yield url


@pytest.fixture
def stack_env(broker_url: str, database_url: str) -> dict[str, str]:
    """Environment for worker and CLI processes of one test."""
    return {
        "NEWSCLASS_BROKER_URL": broker_url,
        "NEWSCLASS_DATABASE_URL": database_url,
        "NEWSCLASS_BATCH_WAIT": "0.1",
        "NEWSCLASS_LOG_LEVEL": "INFO",
    }


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start real `newsclass worker` processes; all are killed at the end of the test (a test of
    the warm shutdown calls ``stop()`` itself)."""
    started: list[WorkerProcess] = []

    def start(env: dict[str, str], concurrency: int = 2, **kwargs: object) -> WorkerProcess:
        log = tmp_path / f"worker-{len(started)}.log"
        proc = WorkerProcess(env, concurrency=concurrency, log_path=log, **kwargs)  # type: ignore[arg-type]
        started.append(proc)
        return proc.start().wait_ready()

    yield start
    for proc in started:
        proc.kill()  # nothing is left to check: a warm shutdown would only cost 1.5 s a test


@pytest.fixture
def newsclass(stack_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the `newsclass` command in a subprocess with the test's environment."""

    def run(*args: str, input: str | None = None, check: bool = True, env: dict | None = None):
        result = subprocess.run(
            [sys.executable, "-m", "worker", *args],
            env={**os.environ, **stack_env, **(env or {})},
            input=input,
            capture_output=True,
            text=True,
            timeout=240,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"newsclass {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    return run


@pytest.fixture
def start_beat(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start real `newsclass beat` processes (in-memory schedule); all are killed at the end."""
    started: list[subprocess.Popen[bytes]] = []
    logs: list[IO[bytes]] = []

    def start(env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = open(tmp_path / f"beat-{len(started)}.log", "wb")  # noqa: SIM115 - closed below
        logs.append(log)
        # Run in tmp_path, so a schedule file beat wrote (it must not: no shelve) would show there.
        repo = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))
        proc = subprocess.Popen(
            [sys.executable, "-m", "worker", "beat"],
            env={**os.environ, **env, "PYTHONPATH": path},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait(10)
    for log in logs:
        log.close()


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """Run `newsclass` in-process (Typer's runner) against the test's database: the commands
    that send nothing, without a Python start-up and imports per call."""
    from worker.cli import app

    monkeypatch.setenv("NEWSCLASS_DATABASE_URL", database_url)
    monkeypatch.delenv("NEWSCLASS_FORMAT", raising=False)
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> Any:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, f"newsclass {' '.join(args)}: {result.output}"
        return result

    yield run
    get_settings.cache_clear()
