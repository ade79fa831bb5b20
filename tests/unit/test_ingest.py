"""worker.ingest: cleaning rules, payload validation (file reading: test_inputs.py)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from worker.ingest import (
    Article,
    Limits,
    RejectedInput,
    clean_text,
    content_hash,
    html_to_text,
    looks_like_html,
    normalise_text,
    normalise_url,
    parse_job,
    warm_up,
)
from worker.inputs import read_article_file

SEED = Path(__file__).resolve().parents[3] / "shared" / "samples" / "seed-article.txt"
SAMPLES = Path(__file__).resolve().parents[2] / "worker" / "samples"


# --------------------------------------------------------------------------- normalise_text


def test_normalise_text_spaces_lines_and_paragraphs() -> None:
    raw = "  Hello\t\t world  \r\n\r\n\r\n\n  Second   para \u2029Third"
    assert normalise_text(raw) == "Hello world\n\nSecond para\n\nThird"


def test_normalise_text_drops_zero_width_and_controls_keeps_curly_quotes() -> None:
    raw = "Zero\u200bwidth\ufeff \x07bell\x1b “quoted” ’s"
    assert normalise_text(raw) == "Zerowidth bell “quoted” ’s"


def test_normalise_text_nfkc() -> None:
    assert normalise_text("ﬁnance\u00a0Ｔｅｓｔ") == "finance Test"


def test_normalise_text_keeps_single_line_breaks() -> None:
    assert normalise_text("a\nb\n\n\n\nc\n") == "a\nb\n\nc"


# --------------------------------------------------------------------------- content_hash


def test_content_hash_ignores_whitespace_and_case() -> None:
    one = "Ministers met on Tuesday.\n\nThey agreed on tariffs."
    two = "  ministers   MET on tuesday.\nThey agreed\ton tariffs.  "
    assert content_hash(one) == content_hash(two)
    assert content_hash(one) != content_hash("Ministers met on Wednesday.")
    assert len(content_hash(one)) == 64


# --------------------------------------------------------------------------- normalise_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://Example.COM/News/", "https://example.com/News"),
        ("http://example.com:80/a?b=2&a=1#frag", "http://example.com/a?a=1&b=2"),
        ("https://example.com:443", "https://example.com/"),
        ("https://example.com:8443/", "https://example.com:8443/"),
        (
            "https://x.org/p?utm_source=tw&utm_Medium=s&fbclid=1&gclid=2&id=7",
            "https://x.org/p?id=7",
        ),
        ("https://x.org/a/b//", "https://x.org/a/b"),
    ],
)
def test_normalise_url(url: str, expected: str) -> None:
    assert normalise_url(url) == expected
    assert normalise_url(expected) == expected


# --------------------------------------------------------------------------- looks_like_html / HTML


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<!DOCTYPE html><html><body><p>x</p></body></html>", True),
        ("<html><p>hi</p></html>", True),
        ("<p>One</p><p>Two</p>", True),
        ("Plain text about 3 < 4 and 5 > 2.", False),
        ("A single <b> is not enough", False),
        ("", False),
    ],
)
def test_looks_like_html(text: str, expected: bool) -> None:
    assert looks_like_html(text) is expected


def test_warm_up_builds_trafilaturas_stop_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    from trafilatura import external

    monkeypatch.setattr(external, "JT_STOPLIST", None)
    warm_up()
    assert external.JT_STOPLIST and "the" in external.JT_STOPLIST


def test_html_fragments_log_no_warnings(caplog: pytest.LogCaptureFixture) -> None:
    """A fragment trafilatura turns down is handled (lxml text): nothing for an operator to see."""
    with caplog.at_level(logging.DEBUG):
        text, _ = html_to_text("<b>Steel tariffs</b> rose again on Monday.")
    assert "Steel tariffs rose again on Monday." in text
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_html_to_text_sample_keeps_article_drops_chrome() -> None:
    text, meta = html_to_text((SAMPLES / "06_trade_ports.html").read_text(encoding="utf-8"))
    assert "Grain terminals along the eastern coast of Liria" in text
    assert "unused quota can be sold between companies" in text
    for chrome in ("cookies", "Accept all", "Privacy policy", "All rights reserved", "Sport"):
        assert chrome not in text
    assert meta["author"] == "Petra Almen"
    assert meta["sitename"] == "The Morning Courier"
    assert meta["date"] == "2025-03-04"


def test_html_to_text_falls_back_to_lxml_for_tiny_pages() -> None:
    text, _ = html_to_text(
        "<html><head><title>T</title><script>var x=1;</script></head>"
        "<body><nav>Home</nav><p>Short note.</p></body></html>"
    )
    assert text == "Short note."


@pytest.mark.parametrize("html", ["", "   ", "<html><body></body></html>", "<p></p><div></div>"])
def test_html_to_text_without_text(html: str) -> None:
    assert html_to_text(html) == ("", {})


# --------------------------------------------------------------------------- clean_text rules


def test_clean_removes_image_markup_and_keeps_alt_and_caption_in_credits() -> None:
    cleaned = clean_text(
        "![]() |\n"
        "![Delegates at the forum](https://img.example/x.jpg)\n"
        "The forum met in the capital. — Photo courtesy of the council |\n"
        "Talks began on Monday and ended on Tuesday."
    )
    assert cleaned.text == "Talks began on Monday and ended on Tuesday."
    assert cleaned.credits == [
        "Delegates at the forum",
        "The forum met in the capital. — Photo courtesy of the council",
    ]


@pytest.mark.parametrize(
    "caption",
    [
        "Soldiers march in the parade on Monday. (Yonhap)",
        "The minister arrives in Brussels. Photo by Jane Roe",
        "Protesters outside the assembly. John Doe/AFP",
        "A container ship docks at the port. Getty Images",
        "Reuters photo of the summit venue",
        "Crowds gather on the square |",
    ],
)
def test_clean_removes_caption_lines(caption: str) -> None:
    cleaned = clean_text(f"{caption}\nThe talks continued into the night.")
    assert cleaned.text == "The talks continued into the night."
    assert cleaned.credits == [caption.rstrip(" |")]


def test_clean_markdown_link_keeps_its_text() -> None:
    cleaned = clean_text("The [trade ministry](https://gov.example/trade) said so.")
    assert cleaned.text == "The trade ministry said so."


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("Ji Da-gyum", "Ji Da-gyum"),
        ("Mara Lindqvist", "Mara Lindqvist"),
        ("By Jane Roe", "Jane Roe"),
        ("By Jane Roe and John Doe", "Jane Roe and John Doe"),
        ("Ludwig van Beek", "Ludwig van Beek"),
    ],
)
def test_clean_byline(line: str, name: str) -> None:
    cleaned = clean_text(f"{line}\nThe cabinet met on Monday to discuss the budget.")
    assert cleaned.byline == name
    assert cleaned.text == "The cabinet met on Monday to discuss the budget."


@pytest.mark.parametrize(
    "first",
    [
        "By then the vote had been counted.",
        "The vote was close.",
        "Markets fell sharply",
        "Officials said on Monday that the talks had stalled",
    ],
)
def test_clean_no_false_byline(first: str) -> None:
    text = f"{first}\nThe cabinet met on Monday."
    cleaned = clean_text(text)
    assert cleaned.byline is None
    assert first in cleaned.text


@pytest.mark.parametrize(
    ("opening", "city", "agency"),
    [
        ("SEOUL — ", "SEOUL", None),
        ("WASHINGTON (AP) — ", "WASHINGTON", "AP"),
        ("LONDON, Jan 5 (Reuters) - ", "LONDON", "Reuters"),
        ("BEIJING, March 3 -- ", "BEIJING", None),
        ("NEW YORK, Jan. 5, 2024 – ", "NEW YORK", None),
        ("SEOUL, March 3 (Yonhap) -- ", "SEOUL", "Yonhap"),
    ],
)
def test_clean_dateline(opening: str, city: str, agency: str | None) -> None:
    cleaned = clean_text(f"{opening}Ministers agreed on a new budget.\nThe vote is next week.")
    assert cleaned.dateline == city
    assert cleaned.agency == agency
    assert cleaned.text == "Ministers agreed on a new budget.\n\nThe vote is next week."


def test_clean_no_false_dateline() -> None:
    text = "US - China talks resumed on Monday.\nUN — a short aside."
    assert clean_text(text).dateline is None
    assert clean_text(text).text.startswith("US - China talks")


@pytest.mark.parametrize(
    ("ending", "agency"),
    [
        ("The vote is next week. — THE KOREA HERALD/ANN", "THE KOREA HERALD/ANN"),
        ("The vote is next week. (Reuters)", "Reuters"),
        ("The vote is next week. — AP", "AP"),
        ("The vote is next week. -- Yonhap", "Yonhap"),
        ("The vote is next week.\n— AP", "AP"),
        ("The vote is next week. (END)", None),
        ("The vote is next week.\n-- Yonhap\n(END)", "Yonhap"),
    ],
)
def test_clean_agency_signoff(ending: str, agency: str | None) -> None:
    cleaned = clean_text(f"Ministers agreed on a new budget.\n{ending}")
    assert cleaned.agency == agency
    assert cleaned.text == "Ministers agreed on a new budget.\n\nThe vote is next week."


def test_clean_keeps_sentences_that_only_look_like_signoffs() -> None:
    text = "The alliance met - NATO leaders agreed.\nShe works for the Reuters/Ipsos poll team."
    assert clean_text(text).text == text.replace("\n", "\n\n")
    assert clean_text(text).agency is None
    assert clean_text(text).credits == []


@pytest.mark.parametrize(
    "noise",
    [
        "Advertisement",
        "ADVERTISEMENT",
        "Read more: Tariffs explained",
        "Subscribe to our newsletter",
        "Share this article",
        "| | |",
        "* * *",
        "---",
    ],
)
def test_clean_drops_boilerplate(noise: str) -> None:
    cleaned = clean_text(f"First paragraph here.\n{noise}\nSecond paragraph here.")
    assert cleaned.text == "First paragraph here.\n\nSecond paragraph here."


def test_clean_paragraphs_and_wrapped_lines() -> None:
    text = (
        "The minister said the plan, which was announced\n"
        "last week, would cost billions.\n"
        "A second paragraph starts here.\n\n\n"
        "A third one after a blank line."
    )
    assert clean_text(text).text == (
        "The minister said the plan, which was announced last week, would cost billions.\n\n"
        "A second paragraph starts here.\n\n"
        "A third one after a blank line."
    )


def test_clean_hard_wrapped_block() -> None:
    text = (
        "The government of the small island state said on Monday that it\n"
        "would double its coastguard budget over the next three years as\n"
        "illegal fishing rises.\n"
        "Officials gave no further details about the plan or its cost to\n"
        "taxpayers in the coming budget.\n"
    )
    paragraphs = clean_text(text).text.split("\n\n")
    assert len(paragraphs) == 2
    assert paragraphs[0].endswith("as illegal fishing rises.")


def test_clean_output_is_normalised() -> None:
    cleaned = clean_text("  Para  one.\r\n\r\n\r\nPara\u200b two. ")
    assert cleaned.text == "Para one.\n\nPara two."
    assert normalise_text(cleaned.text) == cleaned.text


# --------------------------------------------------------------------------- the seed article


@pytest.fixture
def seed() -> str:
    if not SEED.is_file():
        pytest.skip(f"shared seed article not found at {SEED}")
    return SEED.read_text(encoding="utf-8")


def test_seed_article_cleaning(seed: str) -> None:
    cleaned = clean_text(seed)
    assert "![]()" not in cleaned.text
    assert "Photo courtesy" not in cleaned.text
    assert any("Photo courtesy" in credit for credit in cleaned.credits)
    assert cleaned.byline == "Ji Da-gyum"
    assert cleaned.dateline == "SEOUL"
    assert cleaned.agency is not None
    assert "KOREA HERALD" in cleaned.agency
    assert "KOREA HERALD" not in cleaned.text
    assert cleaned.text.startswith("South Korean foreign minister")
    assert cleaned.text.count("\n\n") == 9


def test_seed_article_parse_job(seed: str) -> None:
    article = parse_job({"body": seed, "url": "https://Example.com/a?utm_source=x"})
    assert article.author == "Ji Da-gyum"
    assert article.url == "https://example.com/a"
    assert article.content_hash == content_hash(article.text)


# --------------------------------------------------------------------------- samples


def test_sample_scraped_article_is_cleaned() -> None:
    [payload] = read_article_file(SAMPLES / "04_mixed_scraped.txt")
    article = parse_job(payload)
    assert article.title is not None
    assert article.title.startswith("Valdorian premier heads to summit")
    assert article.author == "Mara Lindqvist"
    assert article.dateline == "PORT ESSEL"
    assert article.agency == "THE DAILY LEDGER/ANN"
    assert len(article.credits) == 1
    assert article.text.startswith("Valdorian Prime Minister Oskar Reyne")
    assert "|" not in article.text


def test_samples_all_parse_with_unique_hashes() -> None:
    files = sorted(SAMPLES.glob("0*"))
    assert len(files) == 6
    articles = [parse_job(payload) for path in files for payload in read_article_file(path)]
    assert all(150 <= len(article.text.split()) <= 350 for article in articles)
    assert len({article.content_hash for article in articles}) == 6


def test_sample_html_through_parse_job() -> None:
    [payload] = read_article_file(SAMPLES / "06_trade_ports.html")
    article = parse_job(payload)
    assert article.text.startswith("Grain terminals")  # the repeated <h1> is gone
    assert article.author == "Petra Almen"
    assert article.source == "The Morning Courier"
    assert article.published_at == datetime(2025, 3, 4, tzinfo=UTC)


# --------------------------------------------------------------------------- parse_job


def test_parse_job_full_payload() -> None:
    article = parse_job(
        {
            "text": "The budget passed.\n\nIt takes effect in May.",
            "title": "  Budget  passes ",
            "url": "HTTP://News.Example.org:80/budget/?utm_campaign=x#top",
            "source": "Example News",
            "author": "Jane Roe",
            "published_at": "2025-04-01T09:30:00+02:00",
            "id": 42,
        }
    )
    assert article == Article(
        text="The budget passed.\n\nIt takes effect in May.",
        title="Budget passes",
        url="http://news.example.org/budget",
        source="Example News",
        author="Jane Roe",
        published_at=datetime(2025, 4, 1, 7, 30, tzinfo=UTC),
        external_id="42",
        content_hash=content_hash("The budget passed.\n\nIt takes effect in May."),
        dateline=None,
        agency=None,
        credits=[],
    )
    as_dict = article.to_dict()
    assert as_dict["published_at"] == "2025-04-01T07:30:00+00:00"
    assert json.loads(json.dumps(as_dict)) == as_dict


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-04-01", datetime(2025, 4, 1, tzinfo=UTC)),
        ("2025-04-01T10:00:00", datetime(2025, 4, 1, 10, tzinfo=UTC)),
        ("2025-04-01T10:00:00Z", datetime(2025, 4, 1, 10, tzinfo=UTC)),
    ],
)
def test_parse_job_dates(value: str, expected: datetime) -> None:
    assert parse_job({"body": "x", "published_at": value}).published_at == expected


def test_parse_job_byline_is_author_fallback() -> None:
    assert parse_job({"body": "By Jane Roe\nThe vote passed."}).author == "Jane Roe"
    assert parse_job({"body": "By Jane Roe\nThe vote passed.", "author": "X"}).author == "X"


def test_parse_job_title_repeated_in_body_is_dropped() -> None:
    article = parse_job({"title": "Vote passes", "body": "Vote passes\n\nThe vote passed."})
    assert article.text == "The vote passed."


def test_parse_job_stray_controls_removed() -> None:
    assert parse_job({"body": "Fine\x07 text\x1b here."}).text == "Fine text here."


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ([1, 2], ["JSON object", "array"]),
        ("text", ["JSON object", "string"]),
        ({}, ["'body'"]),
        ({"title": "t"}, ["'body'"]),
        ({"body": "a", "text": "b"}, ["'body'", "'text'"]),
        ({"body": "a", "colour": "red"}, ["unknown field", "'colour'"]),
        ({"body": 5}, ["'body'", "string", "integer"]),
        ({"body": "a", "title": ["x"]}, ["'title'", "array"]),
        ({"body": "a", "id": True}, ["'id'", "boolean"]),
        ({"body": "a", "id": 1.5}, ["'id'", "number"]),
        ({"body": "a", "published_at": "yesterday"}, ["'published_at'", "ISO 8601", "yesterday"]),
        ({"body": "a", "published_at": 20250101}, ["'published_at'", "integer"]),
        ({"body": "a", "published_at": "9999-12-31T23:00:00-05:00"}, ["years 1 to 9999"]),
        ({"body": "a", "published_at": "0001-01-01T00:00:00+01:00"}, ["years 1 to 9999"]),
        ({"body": "a", "url": "ftp://example.com/x"}, ["'url'", "http"]),
        ({"body": "a", "url": "javascript:alert(1)"}, ["'url'", "http"]),
        ({"body": "a", "url": "http://example.com:99999/"}, ["'url'", "valid URL"]),
        ({"body": "a", "url": "https:///path"}, ["'url'", "host"]),
        ({"body": "a", "title": "t" * 1001}, ["'title'", "limit"]),
        ({"body": "a", "author": "a" * 2001}, ["'author'", "limit"]),
        ({"body": "x" * 2_000_001}, ["'body'", "limit"]),
        ({"body": "   \n\t "}, ["'body'", "no article text"]),
        ({"text": "Advertisement\n| |"}, ["'text'", "no article text"]),
        ({"body": "nul\x00byte"}, ["'body'", "NUL"]),
        ({"body": "ok", "title": "t\x00"}, ["'title'", "NUL"]),
        ({"body": "\x01\x02\x03\x04abc"}, ["'body'", "non-printable"]),
        ({"body": "<html><body><script>x()</script></body></html>"}, ["'body'", "HTML"]),
        ({1: "a", "body": "b"}, ["field names"]),
    ],
)
def test_parse_job_rejects_with_reason(payload: object, words: list[str]) -> None:
    with pytest.raises(RejectedInput) as caught:
        parse_job(payload)
    for word in words:
        assert word in caught.value.reason
    assert str(caught.value) == caught.value.reason


def test_parse_job_limits_are_keyword_arguments() -> None:
    with pytest.raises(RejectedInput, match="limit is 10"):
        parse_job({"body": "x" * 11}, limits=Limits(max_text_chars=10))
    with pytest.raises(RejectedInput, match="at least 100 are needed"):
        parse_job({"body": "short"}, limits=Limits(min_text_chars=100))


def test_rejected_input_is_a_value_error_with_a_reason() -> None:
    error = RejectedInput("field 'x' is wrong")
    assert isinstance(error, ValueError)
    assert error.reason == "field 'x' is wrong"


def test_text_with_a_few_stray_tags_keeps_its_text() -> None:
    """Scraped wiki text often starts with a stray tag or two; trafilatura's loader turns such
    fragments down, and the article must not be rejected as 'HTML with no text'."""
    body = (
        '<div style="float: right;">__TOC__</div><p></p>  The committee voted on Tuesday to reject '
        "the amendment. The opposition said it would try again next year."
    )
    article = parse_job({"body": body})
    assert "The committee voted on Tuesday" in article.text
    assert "<div" not in article.text


def test_the_stored_hash_is_the_hash_of_the_stored_text() -> None:
    from worker.ingest import content_hash

    for body in ("One.\n\n\nTwo  words.", "<p>Para one.</p><p>Para two.</p>", "SEOUL — Text here."):
        article = parse_job({"body": body, "title": "A title"})
        assert article.content_hash == content_hash(article.text)
