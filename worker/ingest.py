"""Pure ingest: a job payload in, one clean :class:`Article` out (files: worker/inputs.py).

No Celery, no database, no network, no settings: limits arrive as keyword arguments. Every bad input
becomes :class:`RejectedInput` (never retried) with a one-sentence reason; nothing else escapes
:func:`parse_job`.

Cleaning scraped text is line based and uses precompiled regexes only (thousands of articles per
second per core). HTML goes through trafilatura only when :func:`looks_like_html` says so.
"""

from __future__ import annotations

import hashlib
import html as html_lib
import logging
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import lxml.html
import trafilatura
from lxml import etree
from lxml.html import HtmlElement
from pydantic import BaseModel, ConfigDict, ValidationError
from trafilatura.utils import load_html

log = logging.getLogger(__name__)
# trafilatura logs the pages it cannot parse as warnings and errors ("parsed tree length: 1, wrong
# data type or not valid HTML", "discarding data: None"), though html_to_text handles every such
# page: the lxml text instead, or a job rejected with its reason. They are not the worker's errors,
# and a worker fed HTML fragments would log two of them per article.
logging.getLogger("trafilatura").setLevel(logging.CRITICAL)

__all__ = [
    "Article",
    "CleanedText",
    "Limits",
    "RejectedInput",
    "clean_text",
    "content_hash",
    "html_to_text",
    "looks_like_html",
    "normalise_text",
    "normalise_url",
    "parse_job",
    "web_url_problem",
]


# --------------------------------------------------------------------------- public types


class RejectedInput(ValueError):
    """Bad input: never retried. ``reason`` is one sentence a person understands."""

    reason: str

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Article:
    text: str
    title: str | None
    url: str | None
    source: str | None
    author: str | None
    published_at: datetime | None
    external_id: str | None
    content_hash: str
    dateline: str | None
    agency: str | None
    credits: list[str] = field(default_factory=list)
    origin: str | None = None  # "page" or "feed" (the feed's own text: the page could not be had)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``published_at`` as an ISO 8601 string)."""
        return {
            "text": self.text,
            "title": self.title,
            "url": self.url,
            "source": self.source,
            "author": self.author,
            "published_at": self.published_at.isoformat() if self.published_at else None,
            "external_id": self.external_id,
            "content_hash": self.content_hash,
            "dateline": self.dateline,
            "agency": self.agency,
            "credits": list(self.credits),
            "origin": self.origin,
        }


@dataclass(frozen=True, slots=True)
class Limits:
    max_text_chars: int = 2_000_000
    max_title_chars: int = 1_000
    min_text_chars: int = 1
    max_field_chars: int = 2_000


@dataclass(frozen=True, slots=True)
class CleanedText:
    text: str
    byline: str | None = None
    dateline: str | None = None
    agency: str | None = None
    credits: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- normalising

_LINE_BREAKS = re.compile("[\r\x0b\x0c\x1c-\x1e\x85\u2028]")
# C0/C1 controls except \t and \n (\r and friends are line breaks, handled first), lone surrogates,
# zero-width characters, BOM, soft hyphen.
_DROP_CHARS = re.compile(
    "[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\u00ad\u180e\u200b-\u200d\u2060\ufeff]"
)


# Any character _unify_breaks changes: one scan finds the usual text has none.
_SPECIAL_CHARS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u180e\u200b-\u200d\u2028\u2029\u2060\ufeff\ud800-\udfff]"
)
_ODD_SPACE = re.compile(r"[^\S\n ]")  # whitespace other than space and newline


def _unify_breaks(text: str) -> str:
    if _SPECIAL_CHARS.search(text) is None:
        return text
    text = _LINE_BREAKS.sub("\n", text.replace("\r\n", "\n"))
    return _DROP_CHARS.sub("", text.replace("\u2029", "\n\n"))


def normalise_text(text: str) -> str:
    """NFKC, no control or zero-width characters, single spaces, stripped lines, one blank line
    between paragraphs, no blank lines at either end. Curly quotes are kept. Idempotent."""
    text = _unify_breaks(text)
    if not text.isascii():
        folded = unicodedata.normalize("NFKC", text)
        if folded != text:  # compatibility characters can fold into line breaks or controls
            text = _unify_breaks(folded)
    if _is_tidy(text):  # as text cleaned once mostly is: the line loop would change nothing
        return text
    lines: list[str] = []
    for raw in text.split("\n"):
        line = " ".join(raw.split())  # after _unify_breaks only horizontal whitespace is left
        if line:
            lines.append(line)
        elif lines and lines[-1]:
            lines.append("")
    if lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def _is_tidy(text: str) -> bool:
    """No blank line at either end or two in a row, no space at either end of a line or two in a
    row, no whitespace but space and newline (given text that went through _unify_breaks)."""
    if not text:
        return True
    if text[0] in " \n" or text[-1] in " \n":
        return False
    if "  " in text or " \n" in text or "\n " in text or "\n\n\n" in text or "\t" in text:
        return False
    return text.isascii() or _ODD_SPACE.search(text) is None


def content_hash(text: str) -> str:
    """sha256 hex of the dedup key: normalised text, casefolded, whitespace collapsed to spaces."""
    return _hash_normalised(normalise_text(text))


def _hash_normalised(text: str) -> str:
    """content_hash of text that is already normalised (the hot path skips normalising twice).

    Normalised text has single spaces and no whitespace but spaces and newlines, so collapsing
    whitespace is turning its line and paragraph breaks into spaces."""
    key = text.casefold().replace("\n\n", " ").replace("\n", " ")
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


_DROP_PARAMS = frozenset({"fbclid", "gclid", "dclid", "msclkid"})
WEB_SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def web_url_problem(url: str) -> Literal["invalid", "scheme", "host"] | None:
    """What keeps ``url`` from being a web address newsclass fetches or stores: ``"invalid"``
    (cannot be parsed), ``"scheme"`` (not http or https), ``"host"`` (no host); None when it is
    one. The one http(s) check: the CLI, the sources and the ingest checks all ask it."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018  # raises ValueError for a bad port
    except ValueError:
        return "invalid"
    if parts.scheme.lower() not in WEB_SCHEMES:
        return "scheme"
    if not parts.hostname:
        return "host"
    return None


def normalise_url(url: str) -> str:
    """Lowercase scheme and host, drop the fragment, tracking parameters (utm_*, fbclid, gclid)
    and default port, sort the query, strip a trailing slash from a non-root path.

    Raises ValueError when the URL cannot be parsed (bad port, broken IPv6 host)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port  # raises ValueError for a bad port
    netloc = host
    if port is not None and _DEFAULT_PORTS.get(scheme) != port:
        netloc = f"{host}:{port}"
    if parts.username is not None:
        userinfo = parts.username
        if parts.password is not None:
            userinfo += f":{parts.password}"
        netloc = f"{userinfo}@{netloc}"
    path = parts.path or ("/" if netloc else "")
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    query = urlencode(
        sorted(
            (key, value)
            for key, value in parse_qsl(parts.query, keep_blank_values=True)
            if not key.lower().startswith("utm_") and key.lower() not in _DROP_PARAMS
        )
    )
    return urlunsplit((scheme, netloc, path, query, ""))


# --------------------------------------------------------------------------- HTML

_HTML_TAG = re.compile(
    r"<(?:!doctype\s+html|/?(?:html|head|body|article|main|section|div|p|br|span|h[1-6]|ul|ol|li"
    r"|table|tr|td|a|strong|em|b|i|nav|header|footer|script|style|meta|title|img|figure)\b)"
    r"[^<>]*>",
    re.IGNORECASE,
)
_HTML_STRONG = re.compile(r"^\s*<(?:!doctype\s+html|html|head|body)\b", re.IGNORECASE)
HTML_TITLE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)

_BANNER = " or ".join(
    f"contains(translate(@{attribute}, 'CDEIKNOST', 'cdeiknost'), '{word}')"
    for attribute in ("id", "class")
    for word in ("cookie", "consent")
)
# Page chrome removed before extraction (trafilatura's prune_xpath) and in the lxml fallback.
_CHROME_XPATHS = [
    "//nav",
    "//footer",
    "//aside",
    "//form",
    "//noscript",
    "//template",
    "//iframe",
    "//body/header",
    f"//*[self::div or self::section or self::p or self::dialog or self::span][{_BANNER}]",
]
_FALLBACK_XPATH = "|".join(["//script", "//style", *_CHROME_XPATHS])
_BLOCK_TAGS = frozenset(
    [
        "p",
        "div",
        "br",
        "li",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "tr",
        "td",
        "th",
        "article",
        "section",
        "blockquote",
        "pre",
        "dd",
        "dt",
        "figcaption",
        "table",
        "ul",
        "ol",
    ]
)
_META_KEYS = ("title", "author", "date", "url", "sitename")


def looks_like_html(text: str) -> bool:
    """True when ``text`` starts like an HTML document or holds at least two common tags."""
    head = text[:4096]
    if _HTML_STRONG.match(head):
        return True
    tags = _HTML_TAG.finditer(text)
    return next(tags, None) is not None and next(tags, None) is not None


def _lxml_text(html: str) -> str:
    """Fallback extraction: every text node outside scripts, navigation, footers and banners."""
    try:
        # trafilatura's loader turns down fragments (text with a few stray tags); lxml takes them.
        tree = load_html(html)
        if tree is None:
            tree = lxml.html.document_fromstring(html)
    except (ValueError, TypeError, etree.LxmlError):
        return ""
    if tree is None:
        return ""
    try:
        for element in tree.xpath(_FALLBACK_XPATH):
            if isinstance(element, HtmlElement) and element.getparent() is not None:
                element.drop_tree()
        for element in tree.iter():
            if isinstance(element.tag, str) and element.tag.lower() in _BLOCK_TAGS:
                element.tail = "\n" + (element.tail or "")
        body = tree.find(".//body")
        text = (body if body is not None else tree).text_content()
    except (ValueError, TypeError, etree.LxmlError):
        return ""
    return str(text)


def warm_up() -> None:
    """Build now what trafilatura builds at the first page that needs its justext fallback: the
    stop words of every language, about 0.35 s of CPU. A worker calls this before it forks its
    processes, so they share the tables and no job waits for them."""
    try:
        from justext.core import define_stoplist
        from trafilatura import external

        define_stoplist(external.JT_STOPLIST or external.jt_stoplist_init())
    except (ImportError, AttributeError):  # another trafilatura layout: it builds them lazily
        log.debug("no trafilatura stop lists to build ahead", exc_info=True)


def html_to_text(html: str) -> tuple[str, dict[str, str]]:
    """Main text of an HTML page (trafilatura: no navigation, footers, cookie banners) and its
    metadata (title, author, date, url, sitename). Falls back to lxml text when trafilatura finds
    nothing; ``("", {})`` when the page has no text at all."""
    if not html.strip():
        return "", {}
    meta: dict[str, str] = {}
    text = ""
    try:
        document = trafilatura.bare_extraction(
            html,
            with_metadata=True,
            include_comments=False,
            include_tables=True,
            include_images=False,
            include_links=False,
            date_extraction_params={"extensive_search": False, "original_date": True},
            prune_xpath=_CHROME_XPATHS,
        )
    except Exception:  # third-party parser on hostile input: fall back, never crash the worker
        log.debug("trafilatura failed; using lxml text", exc_info=True)
        document = None
    if document is not None:
        found = document if isinstance(document, dict) else document.as_dict()
        text = str(found.get("text") or "")
        meta = {key: str(found[key]).strip() for key in _META_KEYS if found.get(key)}
    if not normalise_text(text):
        log.debug("trafilatura found no main text; using the lxml text")
        text = _lxml_text(html)
        title = HTML_TITLE.search(html)
        if title and "title" not in meta:
            meta["title"] = html_lib.unescape(title.group(1)).strip()
    text = normalise_text(text)
    if not text:
        return "", {}
    return text, {key: value for key, value in meta.items() if value}


# --------------------------------------------------------------------------- scraped-text cleaning

_MD_IMAGE = re.compile(r"!\[([^\]\n]*)\]\(([^)\n]*)\)")
_MD_LINK = re.compile(r"(?<!!)\[([^\]\n]+)\]\((?:https?://|/|#|mailto:)[^)\n]*\)")
_ONLY_PUNCT = re.compile(r"^[\s\-–—_=*#~|.,:;!?/\\•·()\[\]{}<>\"'`^+]+$")
_BOILERPLATE = re.compile(
    r"^(?:advertisement|story continues below(?: advertisement)?|share this(?: article| story)?"
    r"|read more|related articles?|skip advertisement)\W*$"
    r"|^(?:read more|related|see also)\s*:.{0,200}$"
    r"|^(?:subscribe to|sign up for|click here to)\b.{0,120}$",
    re.IGNORECASE,
)
_CREDIT_ANYWHERE = re.compile(
    r"\b(?:Photo courtesy|Photos courtesy|Photo by|Photograph by|Photographs by|Photo credit"
    r"|Image courtesy|Reuters photo|AFP photo|Yonhap photo|AP Photo)\b"
)
_CREDIT_TAIL = re.compile(
    r"(?:\w/\s?(?:AFP|Reuters|Yonhap|EPA|AP|Getty|Bloomberg|Xinhua)"
    r"|Getty Images|Shutterstock|EPA-EFE|\(Yonhap\)|\((?:AP|AFP|EPA|Reuters) Photo[^)]*\))"
    r"(?:\s+via\s+Getty Images)?\W*$"
)
_CAPTION_MAX = 400
_TAIL_WINDOW = 80  # a credit at the end of a line is short: look only at its last characters

_BY_LINE = re.compile(r"^By\s+(?P<name>[^()]{2,100}?)(?:\s*\([^)]*@[^)]*\))?$")
_NAME_SPLIT = re.compile(r"\s*,\s*(?:and\s+)?|\s+and\s+")
_NAME_TOKEN = re.compile(r"^(?:[^\W\d_]+(?:['’\-][^\W\d_]+)*|[^\W\d_]\.)$")
_NAME_PARTICLES = frozenset({"van", "von", "de", "da", "del", "der", "di", "la", "le", "bin", "al"})
_NOT_NAME_WORDS = frozenset(
    [
        "the",
        "a",
        "an",
        "of",
        "in",
        "on",
        "at",
        "for",
        "to",
        "and",
        "or",
        "by",
        "with",
        "from",
        "about",
        "after",
        "before",
        "new",
        "breaking",
        "update",
        "updated",
        "live",
        "opinion",
        "editorial",
        "analysis",
        "news",
    ]
)

_DASH = r"(?:—|–|--|-)"
_DATELINE = re.compile(
    r"^(?P<city>[A-ZÀ-ÖØ-Þ][A-ZÀ-ÖØ-Þ.'’\-]*(?:\s[A-ZÀ-ÖØ-Þ][A-ZÀ-ÖØ-Þ.'’\-]*){0,3})"
    r"(?:,\s*(?P<extra>[A-Za-z][A-Za-z.]*(?:\s[A-Za-z.]+){0,2}(?:,?\s+\d{1,2})?(?:,\s*\d{4})?))?"
    r"\s*(?:\((?P<agency>[^()\n]{1,40})\))?\s*" + _DASH + r"\s+(?P<rest>\S.*)$"
)
_AGENCY_NAMES = r"Yonhap|Reuters|AFP|AP|Xinhua|Kyodo|Bloomberg|dpa|ANN|UPI|Bernama|PTI|ANI"
_SIGNOFF_DASH = re.compile(
    r"(?:^|(?<=[.!?\"'”’)]))\s*" + _DASH + r"\s*(?P<agency>(?:" + _AGENCY_NAMES + r")\b"
    r"|[A-Z][A-Z0-9&'’.]*(?:[ /][A-Z0-9&'’.]+){0,6})\s*$"
)
_SIGNOFF_PAREN = re.compile(
    r"(?:^|(?<=[.!?\"'”’]))\s*\((?P<agency>END|" + _AGENCY_NAMES + r"|[A-Z]{2,12})\)\s*$"
)
_TERMINAL = frozenset(".!?:;\"'”’)]…")
_WRAP_MAX = 100


def _strip_markdown(line: str, credits: list[str]) -> str:
    if "](" not in line:
        return line
    for match in _MD_IMAGE.finditer(line):
        alt = match.group(1).strip()
        if alt:
            credits.append(alt)
    line = _MD_LINK.sub(r"\1", _MD_IMAGE.sub(" ", line))
    return " ".join(line.split())


def _is_credit(line: str) -> bool:
    if line.endswith("|"):
        return True
    if len(line) > _CAPTION_MAX or _DATELINE.match(line):
        return False
    return bool(
        _CREDIT_ANYWHERE.search(line) or _CREDIT_TAIL.search(line, max(0, len(line) - _TAIL_WINDOW))
    )


def _name(text: str) -> bool:
    """True for 1-4 capitalised name words (particles such as "van" or "bin" allowed)."""
    tokens = text.split()
    if not 1 <= len(tokens) <= 4:
        return False
    capitalised = 0
    for token in tokens:
        if token.casefold() in _NOT_NAME_WORDS or not _NAME_TOKEN.match(token):
            return False
        if token[0].isupper():
            capitalised += 1
        elif token not in _NAME_PARTICLES:
            return False
    return capitalised >= 1


def _byline(line: str) -> str | None:
    """The author's name if ``line`` is a byline: ``By NAME[, NAME and NAME]`` or a bare name of
    2-4 capitalised words with no sentence punctuation."""
    if len(line) > 120:
        return None
    by = _BY_LINE.match(line)
    if by:
        name = by.group("name").strip()
        return name if all(_name(part) for part in _NAME_SPLIT.split(name)) else None
    return line if len(line.split()) >= 2 and _name(line) else None


def _signoff(line: str) -> tuple[str, str | None] | None:
    """``(line without the sign-off, agency)`` if the line ends with an agency sign-off."""
    for pattern in (_SIGNOFF_DASH, _SIGNOFF_PAREN):
        match = pattern.search(line)
        if match:
            agency = match.group("agency").strip()
            return line[: match.start()].rstrip(), (None if agency == "END" else agency)
    return None


def _join(previous: str, line: str) -> str:
    if previous.endswith("-") and previous[-2:-1].isalpha() and line[:1].islower():
        return previous + line
    return f"{previous} {line}"


def _is_hard_wrapped(block: list[str]) -> bool:
    if len(block) < 3 or max(len(line) for line in block) > _WRAP_MAX:
        return False
    open_ended = sum(1 for line in block[:-1] if line[-1] not in _TERMINAL)
    return open_ended * 2 >= len(block) - 1


def _paragraphs(block: list[str]) -> list[str]:
    """Paragraphs of one block of consecutive lines: each line is one, except wrapped lines."""
    paragraphs: list[str] = []
    if _is_hard_wrapped(block):
        width = max(len(line) for line in block)
        current = ""
        for line in block:
            current = _join(current, line) if current else line
            if line[-1] in _TERMINAL and len(line) < 0.75 * width:
                paragraphs.append(current)
                current = ""
        if current:
            paragraphs.append(current)
        return paragraphs
    for line in block:
        if paragraphs:
            previous = paragraphs[-1]
            continues = previous[-1] not in _TERMINAL and (
                line[0].islower() or previous[-1] in ",-–—"
            )
            if continues:
                paragraphs[-1] = _join(previous, line)
                continue
        paragraphs.append(line)
    return paragraphs


def clean_text(text: str) -> CleanedText:
    """Remove scraping noise from article text and keep what it told us.

    Drops image markup, photo captions and credits (kept in ``credits``), a byline before the first
    paragraph (``byline``), a dateline opening the first paragraph (``dateline``, agency in
    parentheses to ``agency``), an agency sign-off at the end (``agency``), boilerplate lines and
    lines that are only punctuation. Paragraphs come out separated by a blank line."""
    credits: list[str] = []
    lines: list[str | None] = []  # None marks a blank line (a block boundary)
    for raw in normalise_text(text).split("\n"):
        line = _strip_markdown(raw, credits)
        if not raw:
            lines.append(None)
        elif not line or _ONLY_PUNCT.match(line) or _BOILERPLATE.match(line):
            continue
        elif _is_credit(line):
            credits.append(line.rstrip("| ").strip())
        else:
            lines.append(line)
    content = [index for index, line in enumerate(lines) if line is not None]

    byline = None
    if len(content) >= 2:
        first = lines[content[0]]
        assert first is not None
        byline = _byline(first)
        if byline is not None:
            lines[content.pop(0)] = None

    dateline = agency = None
    if content:
        first = lines[content[0]]
        assert first is not None
        match = _DATELINE.match(first)
        if match and len(match.group("city")) >= 3:
            dateline = match.group("city")
            agency = match.group("agency")
            lines[content[0]] = match.group("rest")

    while content:
        last = lines[content[-1]]
        assert last is not None
        found = _signoff(last)
        if found is None:
            break
        rest, signed = found
        agency = signed or agency
        if rest:
            lines[content[-1]] = rest
            break
        lines[content.pop()] = None

    paragraphs: list[str] = []
    block: list[str] = []
    for kept in [*lines, None]:
        if kept is None:
            if block:
                paragraphs.extend(_paragraphs(block))
            block = []
        else:
            block.append(kept)
    return CleanedText(
        text=normalise_text("\n\n".join(paragraphs)),
        byline=byline,
        dateline=dateline,
        agency=agency,
        credits=[credit for credit in credits if credit],
    )


# --------------------------------------------------------------------------- the job payload


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    body: str | None = None
    text: str | None = None
    title: str | None = None
    url: str | None = None
    source: str | None = None
    author: str | None = None
    published_at: str | None = None
    id: str | int | None = None
    origin: Literal["page", "feed"] | None = None


_EXPECTED = {
    "id": "a string or an integer",
    "published_at": "an ISO 8601 date string",
    "origin": '"page" or "feed"',
}
_NON_PRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffd]")
_MOSTLY = 0.3


def _show(value: object, limit: int = 60) -> str:
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def json_type_name(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}.get(
        type(value), "object" if isinstance(value, dict) else type(value).__name__
    )


def _validation_reason(error: ValidationError, payload: dict[str, Any]) -> str:
    first = error.errors()[0]
    name = str(first["loc"][0]) if first["loc"] else "?"
    if first["type"] == "extra_forbidden":
        allowed = ", ".join(_Payload.model_fields)
        return f"unknown field {_show(name)}; allowed fields are {allowed}"
    expected = _EXPECTED.get(name, "a string")
    return f"field {name!r} must be {expected}, got {json_type_name(payload.get(name))}"


def _single_line(value: str | None) -> str | None:
    if value is None:
        return None
    return " ".join(normalise_text(value).split()) or None


def _check_field(name: str, value: str | None, max_chars: int) -> str | None:
    if value is None:
        return None
    if "\x00" in value:
        raise RejectedInput(f"field {name!r} contains a NUL character (binary data?)")
    if len(value) > max_chars:
        raise RejectedInput(
            f"field {name!r} is {len(value):,} characters; the limit is {max_chars:,}"
        )
    return _single_line(value)


def _parse_date(value: str, *, name: str = "published_at") -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise RejectedInput(f"field {name!r} is not an ISO 8601 date: {_show(value)}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise RejectedInput(
            f"field {name!r} is outside the years 1 to 9999 in UTC: {_show(value)}"
        ) from None


def _check_url(value: str) -> str:
    try:
        url = normalise_url(value)
    except ValueError:
        raise RejectedInput(f"field 'url' is not a valid URL: {_show(value)}") from None
    problem = web_url_problem(url)
    if problem == "invalid":
        raise RejectedInput(f"field 'url' is not a valid URL: {_show(value)}")
    if problem == "scheme":
        raise RejectedInput(f"field 'url' must be an http or https URL, got {_show(value)}")
    if problem == "host":
        raise RejectedInput(f"field 'url' has no host: {_show(value)}")
    return url


def _check_body(name: str, body: str, limits: Limits) -> None:
    if len(body) > limits.max_text_chars:
        raise RejectedInput(
            f"field {name!r} is {len(body):,} characters; the limit is {limits.max_text_chars:,}"
        )
    if "\x00" in body:
        raise RejectedInput(f"field {name!r} contains a NUL character (binary data?)")
    bad = sum(len(run) for run in _NON_PRINTABLE.findall(body))
    if body and bad > _MOSTLY * len(body):
        raise RejectedInput(f"field {name!r} is mostly non-printable characters (binary data?)")


def _drop_title_line(text: str, titles: list[str | None]) -> str:
    """Drop the first paragraph when it only repeats the title (HTML pages repeat their <h1>)."""
    keys = {" ".join(title.casefold().split()) for title in titles if title}
    end = text.find("\n\n")
    # A first paragraph far longer than every title cannot repeat one: skip comparing it.
    if not keys or end < 0 or end > 3 * max(map(len, keys)) + 10:
        return text
    if " ".join(text[:end].casefold().split()) in keys:
        return text[end + 2 :]
    return text


def parse_job(payload: object, *, limits: Limits = Limits()) -> Article:
    """Validate one job payload and return the clean Article; raise RejectedInput otherwise."""
    if not isinstance(payload, dict):
        raise RejectedInput(f"the payload must be a JSON object, got {json_type_name(payload)}")
    if not all(isinstance(key, str) for key in payload):
        raise RejectedInput("the payload's field names must be strings")
    try:
        job = _Payload.model_validate(payload)
    except ValidationError as error:
        raise RejectedInput(_validation_reason(error, payload)) from None

    if job.body is not None and job.text is not None:
        raise RejectedInput("give the article in 'body' or in 'text', not both")
    name, given = ("body", job.body) if job.body is not None else ("text", job.text)
    if given is None:
        raise RejectedInput("the payload has no 'body' (or 'text') field with the article")
    _check_body(name, given, limits)
    body = given

    meta: dict[str, str] = {}
    if looks_like_html(body):
        body, meta = html_to_text(body)
        if not body:
            raise RejectedInput(f"field {name!r} is HTML with no readable text")
    cleaned = clean_text(body)

    title = _check_field("title", job.title, limits.max_title_chars)
    meta_title = _single_line(meta.get("title"))
    text = _drop_title_line(cleaned.text, [title, meta_title])
    if not text:
        raise RejectedInput(f"field {name!r} has no article text after cleaning")
    if len(text) < limits.min_text_chars:
        raise RejectedInput(
            f"field {name!r} has {len(text):,} characters of text after cleaning;"
            f" at least {limits.min_text_chars:,} are needed"
        )

    url = _check_field("url", job.url, limits.max_field_chars)
    if url is not None:
        url = _check_url(url)
    elif meta.get("url"):
        try:
            url = _check_url(meta["url"][: limits.max_field_chars])
        except RejectedInput:
            url = None

    raw_id = job.id
    if isinstance(raw_id, int):
        try:
            raw_id = str(raw_id)
        except ValueError:  # more digits than int -> str allows
            raise RejectedInput("field 'id' is an integer too large to use as an id") from None
    external_id = _check_field("id", raw_id, limits.max_field_chars)

    published_at = None
    if job.published_at is not None:
        published_at = _parse_date(job.published_at)
    elif meta.get("date"):
        try:
            published_at = _parse_date(meta["date"])
        except RejectedInput:
            published_at = None

    author = _check_field("author", job.author, limits.max_field_chars)
    source = _check_field("source", job.source, limits.max_field_chars)
    return Article(
        text=text,
        title=title or (meta_title[: limits.max_title_chars] if meta_title else None),
        url=url,
        source=source or _single_line(meta.get("sitename", "")[: limits.max_field_chars]),
        author=author
        or cleaned.byline
        or _single_line(meta.get("author", "")[: limits.max_field_chars]),
        published_at=published_at,
        external_id=external_id,
        content_hash=_hash_normalised(text),
        dateline=cleaned.dateline,
        agency=cleaned.agency,
        credits=list(cleaned.credits),
        origin=job.origin,
    )
