"""Feeds, folders and pages: the only module that talks HTTP.

No Celery and no database here: :mod:`worker.fetch_tasks` calls these functions and decides what
is new. Everything fetched goes through :class:`Fetcher`, which

- allows only http and https, and refuses hosts that resolve to loopback, private, link-local,
  reserved or multicast addresses (unless ``allow_private``), on every redirect hop and again at
  connect time (so a name cannot resolve to a public address for the check and a private one for
  the connection);
- follows at most ``max_redirects`` redirects, stops a body past ``max_bytes`` (decompressed, while
  streaming) and a fetch past ``timeout`` seconds in all;
- says who it is: ``User-Agent: newsclass/<version> (+contact)``.

Feeds are parsed with feedparser from the fetched bytes (feedparser never fetches by itself here),
pages' main text is extracted with :func:`worker.ingest.html_to_text` (trafilatura).
"""

from __future__ import annotations

import calendar
import hashlib
import ipaddress
import re
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
import httpcore
import httpx

from worker import __version__
from worker.ingest import html_to_text, normalise_text, normalise_url, web_url_problem
from worker.inputs import is_ingestible

__all__ = [
    "DroppedFile",
    "FeedEntry",
    "FeedResult",
    "FetchError",
    "FetchPolicy",
    "Fetched",
    "Fetcher",
    "Page",
    "UnsafeURL",
    "check_url",
    "entry_key",
    "feed_hints",
    "feed_payload",
    "fetch_feed",
    "fetch_page",
    "move_to_done",
    "page_payload",
    "parse_feed",
    "scan_folder",
    "user_agent",
]

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
HTML_TYPES = ("text/html", "application/xhtml+xml")
DONE_DIR = "done"


# --------------------------------------------------------------------------------- errors


class FetchError(Exception):
    """A fetch that did not give a usable answer. ``reason`` is one sentence for a person;
    ``transient`` says whether trying again later may help (timeouts, 5xx, 429)."""

    def __init__(self, reason: str, *, transient: bool = False, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.status = status


class UnsafeURL(FetchError):
    """A URL refused by policy: not http(s), no host, or an address that is not public."""


# --------------------------------------------------------------------------------- policy


def user_agent(contact: str | None = None) -> str:
    """``newsclass/<version> (+contact)``: who is fetching, and how to reach the operator."""
    return f"newsclass/{__version__} (+{contact or 'news topic classifier; no contact set'})"


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    timeout: float = 15.0
    max_bytes: int = 5_000_000
    max_redirects: int = 5
    allow_private: bool = False
    user_agent: str = field(default_factory=user_agent)

    @classmethod
    def from_settings(cls, settings: Any) -> FetchPolicy:
        return cls(
            timeout=settings.fetch_timeout,
            max_bytes=settings.fetch_max_bytes,
            max_redirects=settings.fetch_max_redirects,
            allow_private=settings.allow_private_urls,
            user_agent=user_agent(settings.fetch_contact),
        )


_PRIVATE_HINT = "set NEWSCLASS_ALLOW_PRIVATE_URLS=true to allow it"


def _address_kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why an address may not be fetched (``None``: a public address)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind, flag in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("private", address.is_private),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
    ):
        if flag:
            return kind
    return None if address.is_global else "non-public"


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"cannot resolve host {host!r}: {exc}", transient=True) from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _checked_addresses(host: str, port: int, *, allow_private: bool) -> list[str]:
    """The host's addresses, all public (or anything, when private addresses are allowed)."""
    addresses = _resolve(host, port)
    if allow_private:
        return addresses
    for text in addresses:
        kind = _address_kind(ipaddress.ip_address(text.split("%", 1)[0]))
        if kind is not None:
            shown = host if host == text else f"{host} ({text})"
            raise UnsafeURL(f"refused to fetch {shown}: a {kind} address; {_PRIVATE_HINT}")
    return addresses


def check_url(url: str, *, allow_private: bool = False) -> str:
    """The URL if it may be fetched: http or https, a host, and (unless ``allow_private``) only
    public addresses. Raises :class:`UnsafeURL` (or :class:`FetchError` when the host does not
    resolve)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        raise UnsafeURL(f"not a valid URL: {url[:200]!r}") from None
    problem = web_url_problem(url)
    if problem == "scheme":
        raise UnsafeURL(f"only http and https URLs are fetched, not {url[:200]!r}")
    if problem is not None or not parts.hostname:
        raise UnsafeURL(f"the URL has no host: {url[:200]!r}")
    if parts.username or parts.password:
        raise UnsafeURL(f"URLs with a user name or password are not fetched: {parts.hostname}")
    _checked_addresses(parts.hostname, port, allow_private=allow_private)
    return url.strip()


class _GuardedBackend(httpcore.SyncBackend):
    """Connects only to checked addresses: the check and the connection use the same lookup."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = _checked_addresses(host, port, allow_private=self.allow_private)
        error: Exception | None = None
        for address in addresses:
            try:
                return super().connect_tcp(
                    address, port, timeout, local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"no address for {host}")


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, policy: FetchPolicy, *, max_connections: int = 100) -> None:
        super().__init__(trust_env=False)
        # The same pool httpx builds, with the guarded network backend (httpx has no option).
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=max_connections,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_GuardedBackend(allow_private=policy.allow_private),
        )


# --------------------------------------------------------------------------------- fetching


@dataclass(frozen=True, slots=True)
class Fetched:
    url: str  # after redirects
    status: int
    headers: dict[str, str]
    content: bytes = b""

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


class Fetcher:
    """An HTTP client that applies a :class:`FetchPolicy` to every request. Thread-safe; one per
    process is enough (it keeps connections alive per host)."""

    def __init__(self, policy: FetchPolicy, *, max_connections: int = 100) -> None:
        self.policy = policy
        self.client = httpx.Client(
            transport=_GuardedTransport(policy, max_connections=max_connections),
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(policy.timeout, connect=min(policy.timeout, 10.0)),
            headers={"User-Agent": policy.user_agent, "Accept-Encoding": "gzip, deflate"},
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def get(self, url: str, *, headers: dict[str, str] | None = None) -> Fetched:
        """GET ``url`` under the policy; 2xx and 304 come back, anything else is a FetchError."""
        deadline = time.monotonic() + self.policy.timeout
        current = url
        for _hop in range(self.policy.max_redirects + 1):
            check_url(current, allow_private=self.policy.allow_private)
            try:
                with self.client.stream("GET", current, headers=headers) as response:
                    if response.status_code in REDIRECT_CODES and "location" in response.headers:
                        current = urljoin(str(response.url), response.headers["location"])
                        headers = None  # validators belong to the first URL only
                        continue
                    return self._answer(current, response, deadline)
            except httpx.TimeoutException:
                raise FetchError(
                    f"timed out after {self.policy.timeout:g} s fetching {_short_url(current)}",
                    transient=True,
                ) from None
            except httpx.HTTPError as exc:
                raise FetchError(
                    f"could not fetch {_short_url(current)}: {type(exc).__name__}: {exc}",
                    transient=True,
                ) from None
        raise FetchError(f"more than {self.policy.max_redirects} redirects from {_short_url(url)}")

    def _answer(self, url: str, response: httpx.Response, deadline: float) -> Fetched:
        status = response.status_code
        headers = {key.lower(): value for key, value in response.headers.items()}
        if status == 304:
            return Fetched(url=url, status=status, headers=headers)
        if not 200 <= status < 300:
            transient = status >= 500 or status in (408, 429)
            raise FetchError(
                f"HTTP {status} from {_short_url(url)}", transient=transient, status=status
            )
        limit = self.policy.max_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FetchError(
                f"{_short_url(url)} is {int(declared):,} bytes; the limit is {limit:,}"
            )
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise FetchError(f"{_short_url(url)} is larger than the limit of {limit:,} bytes")
            if time.monotonic() > deadline:
                raise FetchError(
                    f"fetching {_short_url(url)} took longer than {self.policy.timeout:g} s",
                    transient=True,
                )
            chunks.append(chunk)
        return Fetched(url=url, status=status, headers=headers, content=b"".join(chunks))


def _short_url(url: str, limit: int = 120) -> str:
    return url if len(url) <= limit else url[: limit - 1] + "…"


# --------------------------------------------------------------------------------- pages

_META_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_\-]+)""", re.IGNORECASE)


def _decode(fetched: Fetched) -> str:
    """The page as text: the charset of the header, else of a <meta> tag, else UTF-8."""
    charset = None
    for part in fetched.headers.get("content-type", "").split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            charset = value.strip("\"' ")
    if charset is None:
        found = _META_CHARSET.search(fetched.content[:4096])
        charset = found.group(1).decode("ascii") if found else "utf-8"
    try:
        return fetched.content.decode(charset, errors="replace")
    except LookupError:
        return fetched.content.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class Page:
    """A fetched page's main text and metadata (title, author, date, url, sitename)."""

    url: str
    text: str
    meta: dict[str, str]


def fetch_page(fetcher: Fetcher, url: str) -> Page:
    """Fetch a page and extract its main text (no navigation, footers or cookie banners)."""
    fetched = fetcher.get(url, headers={"Accept": "text/html,application/xhtml+xml;q=0.9"})
    if fetched.content_type and fetched.content_type not in HTML_TYPES:
        raise FetchError(f"{_short_url(url)} is {fetched.content_type}, not an HTML page")
    text, meta = html_to_text(_decode(fetched))
    if not text:
        raise FetchError(f"{_short_url(url)} has no readable text")
    return Page(url=fetched.url, text=text, meta=meta)


def page_payload(text: str, meta: dict[str, str], request: dict[str, Any]) -> dict[str, str]:
    """The ingest payload of a fetched page (``request``: the fetch job's url, source and feed
    hints): feed hints first, then the page's own metadata."""
    hints = request.get("hints") or {}
    payload = {
        "body": text,
        "url": request.get("url"),
        "origin": "page",
        "title": hints.get("title") or meta.get("title"),
        "author": hints.get("author") or meta.get("author"),
        "published_at": hints.get("published_at") or _iso_date(meta.get("date")),
        "source": request.get("source") or meta.get("sitename"),
        "id": hints.get("id"),
    }
    return {key: value for key, value in payload.items() if value}


def _iso_date(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).isoformat()
    except ValueError:
        return None


# --------------------------------------------------------------------------------- feeds


@dataclass(frozen=True, slots=True)
class FeedEntry:
    key: str  # sha256 of the entry's identity (id, else link, else title and text)
    ref: str  # the id or link itself, for people
    link: str | None  # normalised http(s) link, or None
    title: str | None
    text: str  # the feed's own text of the entry (plain text), may be empty
    author: str | None
    published_at: str | None  # ISO 8601
    entry_id: str | None


@dataclass(frozen=True, slots=True)
class FeedResult:
    not_modified: bool
    entries: list[FeedEntry]
    etag: str | None = None
    last_modified: str | None = None
    title: str | None = None


def feed_hints(entry: FeedEntry) -> dict[str, str]:
    """What the feed says of an entry's article (title, author, published_at, id), for its page."""
    found = {"title": entry.title, "author": entry.author,
             "published_at": entry.published_at, "id": entry.entry_id}  # fmt: skip
    return {key: value for key, value in found.items() if value}


def feed_payload(entry: FeedEntry, source: str | None) -> dict[str, str] | None:
    """The article from the feed's own text (used when the page cannot be had)."""
    if not entry.text:
        return None
    payload = {"body": entry.text, "url": entry.link, "source": source, "origin": "feed",
               **feed_hints(entry)}  # fmt: skip
    return {key: value for key, value in payload.items() if value}


def entry_key(*parts: str) -> str:
    """The stable key of a feed entry or a dropped file: sha256 hex of its identity."""
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "replace")).hexdigest()


def fetch_feed(
    fetcher: Fetcher, url: str, *, etag: str | None = None, last_modified: str | None = None
) -> FeedResult:
    """Conditional GET of a feed (ETag / Last-Modified); a 304 gives ``not_modified``."""
    headers = {
        "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.1"
    }
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    fetched = fetcher.get(url, headers=headers)
    if fetched.status == 304:
        return FeedResult(not_modified=True, entries=[], etag=etag, last_modified=last_modified)
    result = parse_feed(fetched.content, base_url=fetched.url, headers=fetched.headers)
    return FeedResult(
        not_modified=False,
        entries=result.entries,
        etag=fetched.headers.get("etag"),
        last_modified=fetched.headers.get("last-modified"),
        title=result.title,
    )


def parse_feed(
    content: bytes, *, base_url: str = "", headers: dict[str, str] | None = None
) -> FeedResult:
    """Entries of an RSS 0.9x/1.0/2.0 or Atom document (bytes: feedparser never fetches here)."""
    parsed = feedparser.parse(
        content, response_headers={"content-location": base_url, **(headers or {})}
    )
    if not parsed.entries and (parsed.bozo or not parsed.version):
        problem = parsed.get("bozo_exception")
        detail = f": {problem}" if problem else ""
        raise FetchError(
            f"{_short_url(base_url) or 'the document'} is not an RSS or Atom feed{detail}"
        )
    entries = [entry for entry in (_entry(raw, base_url) for raw in parsed.entries) if entry]
    title = parsed.feed.get("title") if parsed.get("feed") else None
    return FeedResult(not_modified=False, entries=entries, title=title or None)


def _entry(raw: Any, base_url: str) -> FeedEntry | None:
    entry_id = str(raw.get("id") or "").strip() or None
    link = _entry_link(raw, base_url)
    title = " ".join(str(raw.get("title") or "").split()) or None
    text = _entry_text(raw)
    if entry_id:
        identity = ("id", entry_id)
    elif link:
        identity = ("link", link)
    elif title or text:
        identity = ("text", f"{title or ''}\n{text}")
    else:
        return None
    published = raw.get("published_parsed") or raw.get("updated_parsed")
    published_at = None
    if published:
        published_at = datetime.fromtimestamp(calendar.timegm(published), UTC).isoformat()
    author = " ".join(str(raw.get("author") or "").split()) or None
    return FeedEntry(
        key=entry_key(*identity),
        ref=identity[1][:500],
        link=link,
        title=title,
        text=text,
        author=author,
        published_at=published_at,
        entry_id=entry_id if entry_id and len(entry_id) <= 500 else None,
    )


def _entry_link(raw: Any, base_url: str) -> str | None:
    href = str(raw.get("link") or "").strip()
    if not href:
        return None
    try:
        url = normalise_url(urljoin(base_url, href))
    except ValueError:
        return None
    return url if web_url_problem(url) is None else None


def _entry_text(raw: Any) -> str:
    """The entry's own text: its full content, else its summary, as plain text."""
    candidates = [item for item in raw.get("content") or [] if item.get("value")]
    if raw.get("summary"):
        candidates.append(
            {"value": raw["summary"], "type": raw.get("summary_detail", {}).get("type")}
        )
    for item in candidates:
        value = str(item.get("value") or "")
        if "html" in str(item.get("type") or "text/html"):
            value, _ = html_to_text(f"<html><body><div>{value}</div></body></html>")
        value = normalise_text(value)
        if value:
            return value
    return ""


# --------------------------------------------------------------------------------- folders


@dataclass(frozen=True, slots=True)
class DroppedFile:
    path: Path
    relative: str
    digest: str  # sha256 of the content
    key: str  # entry_key(relative path, digest): a file is new when its path or content is
    size: int


def scan_folder(
    root: Path, *, settle: float = 0.5, max_bytes: int | None = None
) -> Iterator[DroppedFile]:
    """Files to ingest under ``root`` (of the INGESTIBLE_SUFFIXES), skipping the ``done/``
    folder, hidden files, symlinks, files changed in the last ``settle`` seconds (still being
    written) and files over ``max_bytes``. Raises FetchError when the folder is missing."""
    if not root.is_dir():
        raise FetchError(f"folder {root} does not exist or is not a folder", transient=True)
    newest = time.time() - settle
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if relative.parts[0] == DONE_DIR or any(p.startswith(".") for p in relative.parts):
            continue
        if path.is_symlink() or not path.is_file() or not is_ingestible(path):
            continue
        try:
            stat = path.stat()
            if stat.st_mtime > newest or (max_bytes is not None and stat.st_size > max_bytes):
                continue
            content = path.read_bytes()
        except OSError:
            continue  # gone or unreadable since the listing: the next poll sees it again
        digest = hashlib.sha256(content).hexdigest()
        yield DroppedFile(
            path=path,
            relative=relative.as_posix(),
            digest=digest,
            key=entry_key("file", relative.as_posix(), digest),
            size=len(content),
        )


def move_to_done(root: Path, file: DroppedFile) -> Path:
    """Move an ingested file to ``root/done/`` (same relative path; a suffix avoids clashes)."""
    target = root / DONE_DIR / file.relative
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target = target.with_name(f"{target.stem}.{file.digest[:8]}{target.suffix}")
    file.path.replace(target)
    return target
