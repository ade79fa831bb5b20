"""Property tests for worker.ingest: parse_job only ever raises RejectedInput; the text functions
never raise, normalise_text is idempotent, content_hash ignores whitespace and case."""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.ingest import (
    _DROP_CHARS,
    _LINE_BREAKS,
    Article,
    RejectedInput,
    clean_text,
    content_hash,
    html_to_text,
    normalise_text,
    normalise_url,
    parse_job,
)

FAST = settings(
    max_examples=int(os.environ.get("INGEST_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)

FIELDS = ["body", "text", "title", "url", "source", "author", "published_at", "id"]

# Any text, including lone surrogates and control characters (JSON can carry both).
odd_chars = st.integers(0xD800, 0xDFFF).map(chr) | st.characters(
    categories=["Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Co"]
)
any_text = st.text(max_size=300) | st.text(odd_chars | st.characters(), max_size=300)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | any_text
json_like = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | any_text, children, max_size=4)
    ),
    max_leaves=12,
)
# Fragments of scraped articles, so the cleaning rules actually fire.
PIECES = [
    *"abcXYZ .,;:!?-—–|()[]!/\n\n\t\r\x00\x07\u200b\u2028\u2029\ufeff“”’é\u0301´",
    *["SEOUL — ", "By ", "Jane Roe", "Photo by ", "(Yonhap)", "(END)", "![](x) |", "Advertisement"],
    *["<p>", "</p>", " — THE HERALD/ANN", "The vote passed.", "LONDON, Jan 5 (Reuters) - "],
]
scrapeish = st.lists(st.sampled_from(PIECES), max_size=60).map("".join)
texts = any_text | scrapeish
field_values = st.none() | texts | st.integers() | st.booleans()
payloads_with_body = st.fixed_dictionaries(
    {"body": texts},
    optional={
        "title": field_values,
        "url": field_values | st.sampled_from(["http://a.b/c", "https://x.org:0/?q=1#f", "ftp:x"]),
        "source": field_values,
        "author": field_values,
        "published_at": field_values
        | st.sampled_from(["2025-01-01", "2025-13-40", "0001-01-01T00:00+01:00"]),
        "id": field_values,
    },
)


def _parse_or_reject(payload: object) -> Article | None:
    try:
        return parse_job(payload)
    except RejectedInput as rejected:
        assert rejected.reason
        assert "\n" not in rejected.reason
        return None


@FAST
@given(json_like)
def test_parse_job_only_rejects(payload: object) -> None:
    _parse_or_reject(payload)


@FAST
@given(payloads_with_body)
def test_parse_job_with_body_only_rejects(payload: dict[str, object]) -> None:
    article = _parse_or_reject(payload)
    if article is not None:
        assert article.text
        assert article.text == normalise_text(article.text)
        assert article.content_hash == content_hash(article.text)
        assert article.published_at is None or article.published_at.utcoffset() is not None
        article.to_dict()


@FAST
@given(texts)
def test_normalise_text_is_idempotent(text: str) -> None:
    once = normalise_text(text)
    assert normalise_text(once) == once
    assert "\n\n\n" not in once
    assert once == once.strip()


def _reference_normalise(text: str) -> str:
    """normalise_text as first written, with none of its fast paths."""

    def unify(text: str) -> str:
        text = _LINE_BREAKS.sub("\n", text.replace("\r\n", "\n"))
        return _DROP_CHARS.sub("", text.replace("\u2029", "\n\n"))

    text = unify(text)
    folded = unicodedata.normalize("NFKC", text)
    if folded != text:
        text = unify(folded)
    lines: list[str] = []
    for raw in text.split("\n"):
        line = " ".join(raw.split())
        if line:
            lines.append(line)
        elif lines and lines[-1]:
            lines.append("")
    if lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


tidy_or_not = texts | st.text(st.sampled_from(list("ab \n\t\u00a0\u2028\u3000\r")), max_size=60)


@FAST
@given(tidy_or_not)
def test_normalise_text_fast_paths_change_nothing(text: str) -> None:
    expected = _reference_normalise(text)
    assert normalise_text(text) == expected
    assert normalise_text(expected) == expected
    key = " ".join(expected.casefold().split())  # content_hash's definition
    assert content_hash(text) == hashlib.sha256(key.encode("utf-8")).hexdigest()


@FAST
@given(texts)
def test_clean_text_never_raises_and_output_is_normalised(text: str) -> None:
    cleaned = clean_text(text)
    assert normalise_text(cleaned.text) == cleaned.text
    assert all(isinstance(credit, str) and credit for credit in cleaned.credits)


@FAST
@given(texts | st.text(st.sampled_from(list("<>/ab p div html body ! - \n")), max_size=120))
def test_html_to_text_never_raises(html: str) -> None:
    text, meta = html_to_text(html)
    assert text == normalise_text(text)
    assert (text == "") <= (meta == {})


@FAST
@given(texts)
def test_normalise_url_raises_only_value_error(url: str) -> None:
    try:
        once = normalise_url(url)
    except ValueError:
        return
    assert isinstance(once, str)


@FAST
@given(st.lists(st.text(st.characters(categories=["L", "N", "P"]), min_size=1), min_size=1))
def test_content_hash_stable_under_whitespace_and_case(words: list[str]) -> None:
    text = " ".join(words)
    reflowed = "\n\n  ".join(words).upper() + "\t\n"
    if normalise_text(text.upper()).casefold() != normalise_text(text).casefold():
        return  # a few letters change length or form under upper(); not a whitespace question
    assert content_hash(text) == content_hash(reflowed)
    assert content_hash(re.sub(" ", "   ", text)) == content_hash(text)
