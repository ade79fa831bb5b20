"""The worker group: a process that exits after it said it was ready is started again however
often (a message must never make the group give up); one that keeps failing at start-up stops it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from worker.processes import MAX_FAST_EXITS, run_group


def test_exits_after_readiness_never_stop_the_group(tmp_path: Path) -> None:
    """The child says it is ready and exits at once, as a crash would, more often than the
    start-up limit; then it ends the group with SIGTERM (a warm shutdown)."""
    starts, limit = tmp_path / "starts", MAX_FAST_EXITS + 3
    crash = (
        "import os, pathlib; pathlib.Path(os.environ['NEWSCLASS_READY_FILE']).write_text('1'); "
        f"open({str(starts)!r}, 'a').write('x'); raise SystemExit(1)"
    )
    stop = f"import os, signal; os.kill({os.getpid()}, signal.SIGTERM)"

    def argv(_: int) -> list[str]:
        done = len(starts.read_text()) if starts.exists() else 0
        return [sys.executable, "-c", stop if done >= limit else crash]

    assert run_group(1, argv) == 0
    assert len(starts.read_text()) == limit


def test_a_process_that_dies_at_start_up_stops_the_group(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    code_text = f"open({str(starts)!r}, 'a').write('x'); raise SystemExit(3)"
    assert run_group(1, lambda _: [sys.executable, "-c", code_text]) == 3
    assert len(starts.read_text()) == MAX_FAST_EXITS
