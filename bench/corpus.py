"""The benchmark's article set: real news from ../shared/data when present, else generated.

Articles are repeated as needed with a serial line appended, so each has its own content hash
(a benchmark of duplicates would measure the wrong thing).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from worker.inputs import iter_jsonl

SHARED_UNLABELED = Path(__file__).resolve().parents[2] / "shared/data/wikinews/unlabeled.jsonl"


def load_articles(n: int) -> tuple[list[dict], str]:
    """``n`` ingest payloads and a word on where they came from."""
    if SHARED_UNLABELED.is_file():
        with SHARED_UNLABELED.open(encoding="utf-8") as fh:
            base: list[Any] = [item for _, item in iter_jsonl(fh, str(SHARED_UNLABELED))]
        origin = f"{len(base)} Wikinews articles from {SHARED_UNLABELED} (unlabelled split)"
    else:
        from tests.articles import make_articles

        base = make_articles(1000)
        origin = "1000 generated articles (../shared/data absent)"
    payloads = []
    for serial, item in zip(range(n), itertools.cycle(base), strict=False):
        body = item.get("text") or item.get("body") or ""
        payloads.append(
            {
                "title": item.get("title"),
                "body": f"{body}\n\nBenchmark copy {serial}.",
                "source": item.get("source") or "bench",
                "id": f"bench-{serial}",
            }
        )
    return payloads, origin
