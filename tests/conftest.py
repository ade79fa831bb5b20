"""Shared fixtures: where the shared data lives, and how to treat services that are absent.

A service test skips with the reason where no server answers, and fails when ``CI`` is set.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
IN_CI = bool(os.environ.get("CI"))


def shared_file(*parts: str) -> Path:
    """A file under ../shared, or a skip saying it is absent (third-party text is never in the repo)."""
    path = SHARED.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"{path} is absent (shared data is read from ../shared, never copied)")
    return path


def service_missing(what: str) -> None:
    """Skip locally, fail under CI, where a service the test needs does not answer."""
    if IN_CI:
        pytest.fail(f"{what} (CI must provide it)")
    pytest.skip(what)


def wait_until(
    predicate: Callable[[], Any],
    timeout: float = 90.0,
    interval: float = 0.2,
    what: str = "condition",
) -> Any:
    """Poll ``predicate`` until it returns something true (returned), or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what}: not met in {timeout}s")
