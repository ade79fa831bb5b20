"""A message is data until proven otherwise: the checks that run before Celery touches a message.

A worker process must not exit for anything a producer can put on the wire. Two layers check what
arrives, and both turn a message they cannot read into a *refusal* (a reason a person understands,
the job id when there is one, an excerpt of what arrived), which the consumer records as a
``rejected`` job and acknowledges, so the message never returns:

- :func:`read_envelope`: the kombu envelope (the JSON item a Redis list holds), checked by the
  transport before kombu builds a message from it: JSON, an object, properties and headers that
  are objects, a body that decodes. A compressed body is inflated here, with a bound (kombu would
  inflate it in full first). An item that fails is handed on as a small well-formed envelope
  that carries its refusal in a header (:data:`REFUSED_HEADER`).
- :func:`task_message_problem`: the Celery protocol-2 message inside (``headers['task']`` and
  ``['id']`` strings, ``eta``/``expires`` readable, the body ``[args, kwargs, embed]``), checked by
  the consumer before Celery's own strategy runs.

No Celery, no database here: pure functions of what arrived.
"""

from __future__ import annotations

import binascii
import bz2
import hashlib
import json
import lzma
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

#: The header under which the transport hands on an item it could not read.
REFUSED_HEADER = "x-newsclass-refused"
EXCERPT_CHARS = 500

# kombu's compression content types (kombu.compression) with their aliases, and a factory for an
# incremental decompressor that can stop at a given output size.
_INFLATERS: dict[str, Any] = {
    "application/x-gzip": zlib.decompressobj,
    "gzip": zlib.decompressobj,
    "zlib": zlib.decompressobj,
    "application/x-bz2": bz2.BZ2Decompressor,
    "bzip2": bz2.BZ2Decompressor,
    "bzip": bz2.BZ2Decompressor,
    "application/x-lzma": lzma.LZMADecompressor,
    "lzma": lzma.LZMADecompressor,
    "xz": lzma.LZMADecompressor,
}


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a message cannot be taken, with what is known of it."""

    reason: str
    job_id: str
    excerpt: str
    task: str | None = None  # the task the message names, where it names one


class TooLarge(ValueError):
    """A compressed body inflates past the limit."""


def refused_job_id(raw: str | bytes) -> str:
    """A stable id for a message that carries none: the same bytes always get the same id, so a
    redelivered copy finds its outcome recorded."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    return "refused-" + hashlib.sha256(data).hexdigest()[:32]


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """A bounded text of what arrived, for a person to recognise it."""
    if isinstance(value, bytes):
        text = value[: limit * 4].decode("utf-8", "replace")
    elif isinstance(value, str):
        text = value[: limit * 2]
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=repr)[: limit * 2]
        except (TypeError, ValueError, RecursionError):
            text = repr(value)[: limit * 2]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def inflate(data: bytes, compression: str, *, limit: int) -> bytes:
    """``data`` decompressed by kombu's ``compression`` content type, reading no more than
    ``limit`` bytes of output: past it, :class:`TooLarge` (memory stays bounded by the limit)."""
    factory = _INFLATERS.get(compression)
    if factory is None:
        raise ValueError(f"compression {compression!r} is not accepted (use zlib, bzip2 or lzma)")
    inflater = factory()
    out = inflater.decompress(data, limit + 1)
    if len(out) > limit or getattr(inflater, "unconsumed_tail", None):
        raise TooLarge(f"the compressed body inflates past {limit:,} bytes")
    if not inflater.eof:
        if not getattr(inflater, "needs_input", True):  # bz2, lzma: output left to read
            raise TooLarge(f"the compressed body inflates past {limit:,} bytes")
        raise ValueError("the compressed body is truncated")
    return out


# ----------------------------------------------------------------------------- kombu envelopes


def read_envelope(
    item: str, *, max_inflated: int, loads: Callable[[str], Any] = json.loads
) -> tuple[dict[str, Any] | None, Refusal | None]:
    """The envelope of a Redis list item, ready for kombu, or why it cannot be read.

    A compressed body comes back inflated (and its ``compression`` header gone), so kombu never
    inflates a body past ``max_inflated`` bytes. A refusal always names a job id: the message's
    own, or one made from its bytes (:func:`refused_job_id`)."""
    try:
        message = loads(item)
    except (ValueError, TypeError, RecursionError):
        return None, Refusal("the message is not JSON", refused_job_id(item), excerpt(item))
    if not isinstance(message, dict):
        kind = _json_kind(type(message).__name__)
        reason = f"the message is a JSON {kind}, not a kombu envelope"
        return None, Refusal(reason, refused_job_id(item), excerpt(item))
    headers = message.get("headers")
    job_id = _header_id(headers) or refused_job_id(item)
    problem = _envelope_problem(message)
    if problem is None:
        try:
            message = _decoded(message, max_inflated)
        except NotBase64:
            problem = "the message body is not valid base64"
        except TooLarge as exc:
            problem = f"{exc}: the limit is the longest accepted article plus headroom"
        except (ValueError, TypeError, zlib.error, OSError, EOFError, lzma.LZMAError) as exc:
            problem = f"the compressed body cannot be inflated: {exc}"
    if problem is not None:
        task = headers.get("task") if isinstance(headers, dict) else None
        return None, Refusal(
            problem, job_id, excerpt(item), task if isinstance(task, str) else None
        )
    return message, None


def _json_kind(python_type: str) -> str:
    kinds = {"dict": "object", "list": "array", "tuple": "array", "str": "string", "bytes": "text"}
    kinds |= {"int": "number", "float": "number", "bool": "boolean", "NoneType": "null"}
    return kinds.get(python_type, python_type)


def _header_id(headers: object) -> str | None:
    if isinstance(headers, dict):
        value = headers.get("id")
        if isinstance(value, str):
            return value
    return None


def _envelope_problem(message: dict[str, Any]) -> str | None:
    props = message.get("properties")
    if not isinstance(props, dict):
        return "the envelope has no 'properties' object"
    if not isinstance(props.get("delivery_tag"), str):
        return "the envelope's properties have no delivery_tag string"
    if not isinstance(props.get("delivery_info", {}), dict | None):
        return "the envelope's delivery_info is not an object"
    headers = message.get("headers")
    if headers is not None and not isinstance(headers, dict):
        return f"the message headers are a JSON {_json_kind(type(headers).__name__)}, not an object"
    for key in ("content-type", "content-encoding"):
        if not isinstance(message.get(key), str | None):
            return f"the envelope's {key} is not a string"
    body = message.get("body")
    if not isinstance(body, str | None):
        return "the message body is not a string"
    encoding = props.get("body_encoding")
    if encoding not in (None, "base64", "utf-8"):
        return f"body encoding {encoding!r} is not accepted (base64 or none)"
    return None


def _decoded(message: dict[str, Any], limit: int) -> dict[str, Any]:
    """The envelope with its body as bytes: base64 decoded once, here (kombu then leaves it as
    it is), and inflated where it is compressed, reading no more than ``limit`` bytes."""
    props = message["properties"]
    headers = message.get("headers") or {}
    compression = headers.get("compression")
    base64_body = props.get("body_encoding") == "base64"
    if not base64_body and not compression:
        return message
    body = message.get("body") or ""
    raw = _from_base64(body) if base64_body else body.encode("utf-8", "surrogatepass")
    if compression:
        headers = {key: value for key, value in headers.items() if key != "compression"}
        raw = inflate(raw, str(compression), limit=limit)
    props = {**props, "body_encoding": None}
    return {**message, "headers": headers, "properties": props, "body": raw}


class NotBase64(ValueError):
    """A body that says it is base64 and is not."""


def _from_base64(text: str) -> bytes:
    try:
        return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise NotBase64(str(exc)) from None


def refusal_envelope(refusal: Refusal, *, delivery_tag: object, queue: str) -> dict[str, Any]:
    """A well-formed envelope that stands for an item the transport could not read: the consumer
    records its refusal; kombu and plain Celery consumers see a message they reject quietly."""
    tag = delivery_tag if isinstance(delivery_tag, str) and delivery_tag else None
    return {
        "body": "",
        "content-type": "application/json",
        "content-encoding": "utf-8",
        "headers": {
            REFUSED_HEADER: {
                "reason": refusal.reason,
                "id": refusal.job_id,
                "excerpt": refusal.excerpt,
                "task": refusal.task,
            }
        },
        "properties": {
            "delivery_tag": tag or refusal.job_id,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "body_encoding": None,
            "priority": 0,
        },
    }


def delivery_tag_of(item: str) -> object:
    """The delivery tag of an item, if it has one a kombu QoS recorded (best effort)."""
    try:
        message = json.loads(item)
        return message["properties"]["delivery_tag"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return None


# ----------------------------------------------------------------------------- Celery messages

_TEXT_HEADERS = ("root_id", "parent_id", "group", "shadow", "origin", "argsrepr", "kwargsrepr")


def task_message_problem(
    headers: object, body: object, *, max_wait: float | None = None
) -> str | None:
    """Why a Celery protocol-2 message (its headers and decoded body) cannot be run, or None.

    ``max_wait``: the furthest ahead an ``eta`` may be, in seconds (a job held longer than the
    broker's visibility timeout is delivered again while it waits)."""
    if not isinstance(headers, dict):
        return "the message headers are not an object"
    task, task_id = headers.get("task"), headers.get("id")
    if not isinstance(task, str):
        return "the message headers name no task ('task' is not a string)"
    if not isinstance(task_id, str):
        return "the message headers carry no task id ('id' is not a string)"
    for key in _TEXT_HEADERS:
        if not isinstance(headers.get(key), str | None):
            return f"header {key!r} is not a string"
    times = {}
    for key in ("eta", "expires"):
        times[key], problem = _time_header(key, headers.get(key))
        if problem is not None:
            return problem
    if max_wait is not None and (problem := _eta_problem(times["eta"], max_wait)):
        return problem
    if not _is_time_limit(headers.get("timelimit")):
        return "header 'timelimit' is not [soft, hard] seconds"
    if not isinstance(headers.get("retries", 0), int) or isinstance(headers.get("retries"), bool):
        return "header 'retries' is not a whole number"
    return body_problem(body)


def body_problem(body: object) -> str | None:
    """Why a decoded protocol-2 body is not ``[args, kwargs, embed]``, or None."""
    if not isinstance(body, list | tuple) or len(body) != 3:
        kind = _json_kind(type(body).__name__)
        return (
            f"the message body is a JSON {kind}, not [args, kwargs, embed] "
            "(Celery's message protocol 2)"
        )
    args, kwargs, embed = body
    if not isinstance(args, list | tuple):
        return "the message body's args are not an array"
    if not isinstance(kwargs, dict):
        return "the message body's kwargs are not an object"
    if not isinstance(embed, dict | None):
        return "the message body's embed is not an object"
    return None


def _time_header(key: str, value: object) -> tuple[datetime | None, str | None]:
    """The header's time (UTC when it names no zone), read once, or why it cannot be read."""
    if value is None:
        return None, None
    if not isinstance(value, str):
        return None, f"header {key!r} is not an ISO 8601 time"
    try:
        when = datetime.fromisoformat(value)
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        when.timestamp()  # what Celery does with it: a time past what it holds is refused here
    except (ValueError, OverflowError, OSError):
        return None, f"header {key!r} is not an ISO 8601 time: {excerpt(value, 60)}"
    return when, None


def _eta_problem(eta: datetime | None, max_wait: float) -> str | None:
    if eta is None:
        return None
    ahead = (eta - datetime.now(UTC)).total_seconds()
    if ahead <= max_wait:
        return None
    return (
        f"header 'eta' is {ahead:,.0f} s ahead; a job may wait at most {max_wait:,.0f} s "
        "(the broker's visibility timeout)"
    )


def _is_time_limit(value: object) -> bool:
    if value is None:
        return True
    if not isinstance(value, list | tuple) or len(value) != 2:
        return False
    return all(
        v is None or (isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < 1e9)
        for v in value
    )
