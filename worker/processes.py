"""Run N single-process Celery workers side by side, for the CPU-bound ingest queue.

Why not prefork: a prefork worker has one consumer (its main process) that receives, tracks and
acknowledges every message for all its pool processes; with Redis that is several round trips per
message, and on a small machine that one process becomes the ceiling. N solo workers each consume,
batch, classify and store on their own, so receiving scales with the processes, and no batch is
copied between processes.

The group restarts a process that exits (a crash, or a planned recycle after its job or memory
budget), forwards SIGTERM/SIGINT to all of them (warm shutdown: unacknowledged messages go back
to the queue), and gives up if a process keeps dying at start-up: before it said it was ready,
or within seconds of starting when no ready file is kept. A process that exits after it was
ready (whatever a message did to it) is started again, however often.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

log = logging.getLogger("newsclass.processes")

FAST_EXIT_SECONDS = 10.0
MAX_FAST_EXITS = 5


def solo_worker_argv(index: int, *, queues: str, loglevel: str) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "worker.celery_app:app", "worker",
        "--pool=solo", f"--hostname=ingest{index}@%h", f"--queues={queues}",
        f"--loglevel={loglevel}", "--without-gossip", "--without-mingle",
    ]  # fmt: skip


def run_group(
    count: int,
    argv_for: Callable[[int], Sequence[str]],
    *,
    ready_file: Path | None = None,
) -> int:
    """Run ``count`` processes until SIGTERM/SIGINT; return the exit code for the group.

    Each process says it is ready in a file of its own (beside ``ready_file``, else in a
    temporary folder), so the group can tell a start-up failure from a later exit."""
    stopping = False
    children: dict[int, tuple[int, subprocess.Popen[bytes], float]] = {}
    fast_exits = dict.fromkeys(range(count), 0)
    base = ready_file or Path(tempfile.mkdtemp(prefix="newsclass-group-")) / "ready"

    def child_ready_file(index: int) -> Path:
        return base.with_name(f"{base.name}.{index}")

    def spawn(index: int) -> None:
        env = dict(os.environ)
        own_ready = child_ready_file(index)
        own_ready.unlink(missing_ok=True)
        env["NEWSCLASS_READY_FILE"] = str(own_ready)
        proc = subprocess.Popen(list(argv_for(index)), env=env)
        children[proc.pid] = (index, proc, time.monotonic())

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for _, proc, _ in children.values():
            if proc.poll() is None:
                proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for index in range(count):
            spawn(index)
        announced = False
        code = 0
        while children:
            if (
                not announced
                and ready_file
                and all(child_ready_file(i).exists() for i in range(count))
            ):
                ready_file.write_text(f"{os.getpid()}\n")
                announced = True
            for pid, (index, proc, started) in list(children.items()):
                status = proc.poll()
                if status is None:
                    continue
                del children[pid]
                if stopping:
                    continue
                if (
                    not child_ready_file(index).exists()
                    and time.monotonic() - started < FAST_EXIT_SECONDS
                ):
                    fast_exits[index] += 1
                    if fast_exits[index] >= MAX_FAST_EXITS:
                        log.error("worker process %d keeps exiting at start-up; stopping", index)
                        code = status or 1
                        forward(signal.SIGTERM, None)
                        continue
                else:
                    fast_exits[index] = 0
                log.warning("worker process %d exited with %s; starting it again", index, status)
                spawn(index)
            time.sleep(0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if ready_file is None:
            shutil.rmtree(base.parent, ignore_errors=True)
    return code
