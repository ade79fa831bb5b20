"""The checks a message passes before Celery sees it (worker/messages.py), and the bounded forms
that every outcome is stored in (worker/store.py: job_key, storable_text)."""

from __future__ import annotations

import base64
import bz2
import json
import lzma
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.messages import (
    REFUSED_HEADER,
    TooLarge,
    body_problem,
    inflate,
    read_envelope,
    refusal_envelope,
    task_message_problem,
)
from worker.store import JOB_ID_CHARS, job_key, storable_text
from worker.tasks import IngestJob, parts_by_size

COMPRESSORS = {"application/x-gzip": zlib.compress, "bzip2": bz2.compress, "xz": lzma.compress}


def item(body: bytes = b"[[{}], {}, {}]", **fields: object) -> str:
    message: dict[str, object] = {
        "body": base64.b64encode(body).decode(),
        "content-type": "application/json",
        "content-encoding": "utf-8",
        "headers": {"task": "newsclass.ingest_article", "id": "job-1"},
        "properties": {"delivery_tag": "tag-1", "body_encoding": "base64", "delivery_info": {}},
    }
    message.update(fields)
    return json.dumps(message)


@pytest.mark.parametrize("compression", sorted(COMPRESSORS))
def test_inflate_stops_at_the_limit(compression: str) -> None:
    data = COMPRESSORS[compression](b"a" * 100_000)
    assert inflate(data, compression, limit=100_000) == b"a" * 100_000
    with pytest.raises(TooLarge):
        inflate(data, compression, limit=99_999)
    with pytest.raises(ValueError, match="truncated"):
        inflate(data[: len(data) // 2], compression, limit=100_000)


def test_a_bomb_is_refused_without_inflating_it() -> None:
    """100 MB of zeros in about 100 KB: refused after reading the limit plus one byte."""
    bomb = zlib.compress(b"\0" * 100_000_000, 9)
    headers = {"task": "newsclass.ingest_article", "id": "bomb", "compression": "zlib"}
    message, refusal = read_envelope(item(bomb, headers=headers), max_inflated=1_000_000)
    assert message is None and refusal is not None
    assert refusal.job_id == "bomb" and "inflates past 1,000,000 bytes" in refusal.reason


def test_a_compressed_body_comes_back_inflated_for_kombu() -> None:
    headers = {"task": "newsclass.ingest_article", "id": "z", "compression": "application/x-gzip"}
    message, refusal = read_envelope(
        item(zlib.compress(b"[[1], {}, {}]"), headers=headers), max_inflated=100
    )
    assert refusal is None and message is not None
    assert message["body"] == b"[[1], {}, {}]" and "compression" not in message["headers"]
    assert message["properties"]["body_encoding"] is None


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("not json {", "not JSON"),
        ("[1, 2]", "a JSON array, not a kombu envelope"),
        ('"text"', "a JSON string"),
        (item(properties=[1]), "no 'properties' object"),
        (item(properties={"body_encoding": "base64"}), "no delivery_tag"),
        (item(headers=["task"]), "headers are a JSON array, not an object"),
        (json.dumps({**json.loads(item()), "body": 5}), "body is not a string"),
        (json.dumps({**json.loads(item()), "body": "@@@"}), "not valid base64"),
        (
            item(properties={"delivery_tag": "t", "body_encoding": "rot13"}),
            "'rot13' is not accepted",
        ),
    ],
)
def test_envelopes_that_cannot_be_read(raw: str, says: str) -> None:
    message, refusal = read_envelope(raw, max_inflated=1_000)
    assert message is None and refusal is not None and says in refusal.reason
    assert refusal.job_id and len(refusal.excerpt) <= 500


def test_a_refusal_without_an_id_gets_the_same_id_each_time() -> None:
    first = read_envelope("garbage", max_inflated=10)[1]
    again = read_envelope("garbage", max_inflated=10)[1]
    other = read_envelope("garbage!", max_inflated=10)[1]
    assert first and again and other
    assert first.job_id == again.job_id != other.job_id


def test_the_refusal_envelope_keeps_the_delivery_tag_so_the_ack_clears_it() -> None:
    _, refusal = read_envelope(item(headers=[1]), max_inflated=10)
    assert refusal is not None
    envelope = refusal_envelope(refusal, delivery_tag="tag-1", queue="celery")
    assert envelope["properties"]["delivery_tag"] == "tag-1"
    assert envelope["headers"][REFUSED_HEADER]["reason"] == refusal.reason
    assert read_envelope(json.dumps(envelope), max_inflated=10)[1] is None  # readable


@pytest.mark.parametrize(
    ("headers", "body", "says"),
    [
        ([], [[], {}, {}], "headers are not an object"),
        ({"id": "1"}, [[], {}, {}], "name no task"),
        ({"task": "t"}, [[], {}, {}], "no task id"),
        ({"task": "t", "id": "1", "eta": "next tuesday"}, [[], {}, {}], "'eta' is not an ISO 8601"),
        ({"task": "t", "id": "1", "eta": 5}, [[], {}, {}], "'eta' is not an ISO 8601"),
        ({"task": "t", "id": "1", "timelimit": "x"}, [[], {}, {}], "timelimit"),
        ({"task": "t", "id": "1", "retries": "2"}, [[], {}, {}], "retries"),
        ({"task": "t", "id": "1", "root_id": 7}, [[], {}, {}], "root_id"),
        ({"task": "t", "id": "1"}, {"title": "x"}, "a JSON object, not [args, kwargs, embed]"),
        ({"task": "t", "id": "1"}, [{}, {}, {}], "args are not an array"),
        ({"task": "t", "id": "1"}, [[], [], {}], "kwargs are not an object"),
        ({"task": "t", "id": "1"}, [[], {}, 3], "embed is not an object"),
    ],
)
def test_task_messages_that_cannot_run(headers: object, body: object, says: str) -> None:
    problem = task_message_problem(headers, body)
    assert problem is not None and says in problem


def test_an_eta_past_the_visibility_timeout_is_refused() -> None:
    headers = {"task": "t", "id": "1", "eta": "9999-12-31T00:00:00+00:00"}
    assert task_message_problem(headers, [[], {}, {}]) is None
    problem = task_message_problem(headers, [[], {}, {}], max_wait=3600)
    assert problem is not None and "at most 3,600 s" in problem


def test_a_good_message_passes() -> None:
    headers = {"task": "t", "id": "1", "eta": None, "timelimit": [None, None], "retries": 2}
    assert task_message_problem(headers, [[{"body": "x"}], {}, None]) is None
    assert body_problem(([], {}, {})) is None


@given(st.text())
def test_every_job_id_has_a_bounded_printable_key(job_id: str) -> None:
    key = job_key(job_id)
    assert 0 < len(key) <= JOB_ID_CHARS and key.isprintable()
    assert job_key(key) == key  # a key is its own key: lookups by it find the job
    if key != job_id:
        assert key.startswith("sha256:")


def test_a_uuid_is_its_own_key_and_a_long_id_is_hashed() -> None:
    uuid = "0b7c43c2-5a6e-4b8a-9f55-3c7b1f4f6a10"
    assert job_key(uuid) == uuid
    assert job_key("x" * 65) != job_key("x" * 66)


@given(st.text())
def test_storable_text_is_encodable_and_has_no_nul(text: str) -> None:
    stored = storable_text(text)
    assert stored is not None and "\0" not in stored
    stored.encode("utf-8")  # raises on a lone surrogate
    if text.isascii() and "\0" not in text:
        assert stored == text


def test_parts_stay_under_the_text_budget() -> None:
    jobs = [IngestJob(str(i), {"body": "a" * size}) for i, size in enumerate([4, 4, 4, 9, 1, 1])]
    parts = parts_by_size(jobs, max_chars=8)
    assert [[j.id for j in part] for part in parts] == [["0", "1"], ["2"], ["3"], ["4", "5"]]
    assert parts_by_size([], max_chars=8) == []
