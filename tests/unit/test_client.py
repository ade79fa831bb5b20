"""worker.client: the fetch queue's sends are the plain Celery messages they always were."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from worker.client import enqueue_pages, send_fetch_page, send_ingest, send_poll
from worker.names import FETCH_QUEUE, FETCH_TASK, INGEST_TASK, POLL_TASK


class FakeApp:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.producers = 0

    def send_task(self, name: str, **options: Any) -> None:
        self.sent.append((name, options))

    @contextlib.contextmanager
    def producer_or_acquire(self) -> Iterator[str]:
        self.producers += 1
        yield "producer"


def test_fetch_queue_sends() -> None:
    app = FakeApp()
    send_poll(3, "tok", app=app, producer="p")  # type: ignore[arg-type]
    send_fetch_page({"url": "https://a.example/"}, app=app)  # type: ignore[arg-type]
    send_ingest({"body": "x"}, job_id="j1", app=app, producer="p")  # type: ignore[arg-type]
    assert app.sent == [
        (POLL_TASK, {"args": (3, "tok"), "queue": FETCH_QUEUE, "producer": "p"}),
        (FETCH_TASK, {"args": ({"url": "https://a.example/"},), "queue": FETCH_QUEUE,
                      "producer": None}),
        (INGEST_TASK, {"args": ({"body": "x"},), "task_id": "j1", "producer": "p"}),
    ]  # fmt: skip


def test_enqueue_pages_sends_one_fetch_job_per_url_over_one_producer() -> None:
    app = FakeApp()
    urls = ["https://a.example/1", "http://b.example/2"]
    ids = enqueue_pages(urls, source="wire", app=app)  # type: ignore[arg-type]
    assert app.producers == 1
    assert [options["args"][0] for _, options in app.sent] == [
        {"url": url, "job_id": job_id, "source": "wire"}
        for url, job_id in zip(urls, ids, strict=True)
    ]
    assert {name for name, _ in app.sent} == {FETCH_TASK}
    assert len(set(ids)) == 2


@pytest.mark.parametrize(
    "url", ["ftp://a.example/x", "https:///nohost", "a.example/x", "http://[::1"]
)
def test_enqueue_pages_refuses_other_urls_and_sends_nothing(url: str) -> None:
    app = FakeApp()
    with pytest.raises(ValueError, match="only http and https URLs are fetched"):
        enqueue_pages(["https://ok.example/", url], source=None, app=app)  # type: ignore[arg-type]
    assert app.sent == []
