"""worker.sources: URL safety (schemes, private addresses, every redirect hop, connect time), size
caps, timeouts, feeds (RSS and Atom), page extraction and drop folders, against a real local HTTP
server on 127.0.0.1."""

from __future__ import annotations

import gzip
import ipaddress
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from worker import sources
from worker.sources import (
    Fetcher,
    FetchError,
    FetchPolicy,
    UnsafeURL,
    check_url,
    fetch_feed,
    fetch_page,
    move_to_done,
    parse_feed,
    scan_folder,
)

# ------------------------------------------------------------------------- a local web site


@dataclass
class Reply:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "text/html; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0  # seconds before answering
    drip: float = 0.0  # seconds between chunks of 100 bytes (no Content-Length)


class LocalSite:
    """A threaded HTTP server on 127.0.0.1 that serves ``routes`` (path -> Reply or a callable
    returning one), honours If-None-Match / If-Modified-Since with 304, and counts requests."""

    def __init__(self) -> None:
        self.routes: dict[str, Reply | Callable[[], Reply]] = {}
        self.hits: Counter[str] = Counter()
        self.times: dict[str, list[float]] = {}  # path -> monotonic time of each request
        self.not_modified: Counter[str] = Counter()
        self.user_agents: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *_: object) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                site.hits[path] += 1
                site.times.setdefault(path, []).append(time.monotonic())
                site.user_agents.append(self.headers.get("User-Agent", ""))
                route = site.routes.get(path)
                reply = route() if callable(route) else route
                if reply is None:
                    reply = Reply(b"not found", status=404, content_type="text/plain")
                if reply.delay:
                    time.sleep(reply.delay)
                fresh = (reply.etag and self.headers.get("If-None-Match") == reply.etag) or (
                    reply.last_modified
                    and self.headers.get("If-Modified-Since") == reply.last_modified
                )
                if fresh and reply.status == 200:
                    site.not_modified[path] += 1
                    self.send_response(304)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                if reply.etag:
                    self.send_header("ETag", reply.etag)
                if reply.last_modified:
                    self.send_header("Last-Modified", reply.last_modified)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                if reply.drip:
                    self.send_header("Connection", "close")
                    self.end_headers()
                    for start in range(0, len(reply.body), 100):
                        self.wfile.write(reply.body[start : start + 100])
                        self.wfile.flush()
                        time.sleep(reply.drip)
                    self.close_connection = True
                    return
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that stops reading (size cap, timeout) is what the tests want

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def __enter__(self) -> LocalSite:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site() -> Iterator[LocalSite]:
    with LocalSite() as running:
        yield running


def http_date(when: float) -> str:
    return formatdate(when, usegmt=True)


LOCAL = FetchPolicy(timeout=5.0, max_bytes=200_000, allow_private=True)


def page_html(title: str, paragraphs: list[str]) -> str:
    """An article page with navigation, a cookie banner and a footer around the story."""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<!doctype html><html><head><title>{title} | Daily Example</title></head><body>"
        '<nav><a href="/">Home</a> <a href="/world">World navigation link</a></nav>'
        '<div id="cookie-banner">We use cookies to improve your experience. Accept all cookies.</div>'
        f"<main><article><h1>{title}</h1>{body}</article></main>"
        "<footer>Copyright Daily Example footer text. All rights reserved.</footer>"
        "</body></html>"
    )


STORY = [
    "The defence ministry confirmed that two infantry battalions will deploy to the northern border.",
    "Naval commanders said the joint exercise would test missile defence systems and submarine tracking.",
    "Parliament approved a rise in military spending to buy fighter jets, tanks and artillery shells.",
]


# ------------------------------------------------------------------------- URL safety


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/feed.xml",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "gopher://example.org/",
        "http:///no-host",
        "http://user:secret@93.184.216.34/",
        "http://[::1",
    ],
)
def test_only_plain_http_and_https_urls(url: str) -> None:
    with pytest.raises(UnsafeURL):
        check_url(url)


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://localhost:8080/feed", "loopback"),
        ("http://10.1.2.3/", "private"),
        ("http://192.168.0.10/", "private"),
        ("http://172.16.5.4/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::1]/", "loopback"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[fd00::1]/", "private"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://100.64.0.1/", "non-public"),
    ],
)
def test_private_addresses_are_refused_with_a_clear_reason(url: str, kind: str) -> None:
    with pytest.raises(UnsafeURL, match=kind) as refused:
        check_url(url)
    assert "NEWSCLASS_ALLOW_PRIVATE_URLS" in refused.value.reason


def test_private_addresses_are_allowed_when_configured() -> None:
    assert check_url("http://127.0.0.1:9/x", allow_private=True) == "http://127.0.0.1:9/x"
    assert check_url("https://93.184.216.34/news") == "https://93.184.216.34/news"


def test_a_private_url_is_refused_before_any_request(site: LocalSite) -> None:
    site.routes["/page"] = Reply(b"<p>hello</p>")
    with Fetcher(FetchPolicy(allow_private=False)) as fetcher, pytest.raises(UnsafeURL):
        fetcher.get(site.url("/page"))
    assert site.hits["/page"] == 0


@pytest.fixture
def loopback_is_public(monkeypatch: pytest.MonkeyPatch) -> None:
    """Treat 127.0.0.1 (the test server) as a public address; everything else as usual."""
    real = sources._address_kind

    def kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
        return None if str(address) == "127.0.0.1" else real(address)

    monkeypatch.setattr(sources, "_address_kind", kind)


@pytest.mark.usefixtures("loopback_is_public")
@pytest.mark.parametrize(
    "target", ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.5/", "file:///etc/passwd"]
)
def test_a_redirect_to_a_private_address_is_refused(site: LocalSite, target: str) -> None:
    site.routes["/go"] = Reply(status=302, headers={"Location": target})
    with Fetcher(FetchPolicy(allow_private=False)) as fetcher, pytest.raises(UnsafeURL):
        fetcher.get(site.url("/go"))
    assert site.hits["/go"] == 1


def test_the_connection_itself_is_checked(monkeypatch: pytest.MonkeyPatch, site: LocalSite) -> None:
    """A name that resolves to a private address at connect time is refused there too (DNS
    rebinding: the pre-check saw a public address)."""
    site.routes["/page"] = Reply(b"<p>secret</p>")
    monkeypatch.setattr(sources, "_resolve", lambda host, port: ["127.0.0.1"])
    with Fetcher(FetchPolicy(allow_private=False)) as fetcher, pytest.raises(UnsafeURL):
        fetcher.client.get(f"http://rebind.test:{site.server.server_address[1]}/page")
    assert site.hits["/page"] == 0


def test_redirects_are_followed_up_to_the_limit(site: LocalSite) -> None:
    for n in range(8):
        site.routes[f"/r{n}"] = Reply(status=301, headers={"Location": f"/r{n + 1}"})
    site.routes["/r8"] = Reply(b"<p>arrived</p>")
    with Fetcher(LOCAL) as fetcher:
        with pytest.raises(FetchError, match="more than 5 redirects"):
            fetcher.get(site.url("/r0"))
        fetched = fetcher.get(site.url("/r3"))
    assert fetched.status == 200 and fetched.url == site.url("/r8")
    assert fetched.content == b"<p>arrived</p>"


def test_the_user_agent_says_who_fetches(site: LocalSite) -> None:
    site.routes["/"] = Reply(b"ok", content_type="text/plain")
    policy = FetchPolicy(allow_private=True, user_agent=sources.user_agent("ops@example.org"))
    with Fetcher(policy) as fetcher:
        fetcher.get(site.url("/"))
    assert site.user_agents[-1].startswith("newsclass/")
    assert "(+ops@example.org)" in site.user_agents[-1]


# ------------------------------------------------------------------------- size and time limits


def test_a_declared_oversized_body_is_refused(site: LocalSite) -> None:
    site.routes["/big"] = Reply(b"x" * 5000)
    with (
        Fetcher(FetchPolicy(max_bytes=1000, allow_private=True)) as fetcher,
        pytest.raises(FetchError, match="limit is 1,000") as refused,
    ):
        fetcher.get(site.url("/big"))
    assert not refused.value.transient


def test_an_undeclared_oversized_body_is_cut_while_streaming(site: LocalSite) -> None:
    site.routes["/big"] = Reply(b"y" * 5000, drip=0.001)  # no Content-Length
    with (
        Fetcher(FetchPolicy(max_bytes=1000, allow_private=True)) as fetcher,
        pytest.raises(FetchError, match="larger than the limit"),
    ):
        fetcher.get(site.url("/big"))


def test_the_size_cap_counts_decompressed_bytes(site: LocalSite) -> None:
    bomb = gzip.compress(b"\0" * 2_000_000)
    site.routes["/bomb"] = Reply(bomb, headers={"Content-Encoding": "gzip"})
    with (
        Fetcher(FetchPolicy(max_bytes=100_000, allow_private=True)) as fetcher,
        pytest.raises(FetchError, match="larger than the limit"),
    ):
        fetcher.get(site.url("/bomb"))


def test_a_slow_answer_times_out(site: LocalSite) -> None:
    site.routes["/slow"] = Reply(b"late", delay=3.0)
    started = time.monotonic()
    with (
        Fetcher(FetchPolicy(timeout=0.5, allow_private=True)) as fetcher,
        pytest.raises(FetchError, match="timed out") as failed,
    ):
        fetcher.get(site.url("/slow"))
    assert failed.value.transient
    assert time.monotonic() - started < 2.5


def test_a_dripping_body_stops_at_the_total_timeout(site: LocalSite) -> None:
    site.routes["/drip"] = Reply(b"z" * 3000, drip=0.1)  # 30 chunks, 3 s in all
    started = time.monotonic()
    with (
        Fetcher(FetchPolicy(timeout=1.0, allow_private=True)) as fetcher,
        pytest.raises(FetchError, match="longer than 1 s"),
    ):
        fetcher.get(site.url("/drip"))
    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize(
    ("status", "transient"), [(500, True), (503, True), (429, True), (404, False), (403, False)]
)
def test_error_statuses_are_fetch_errors(site: LocalSite, status: int, transient: bool) -> None:
    site.routes["/e"] = Reply(b"nope", status=status)
    with Fetcher(LOCAL) as fetcher, pytest.raises(FetchError, match=f"HTTP {status}") as failed:
        fetcher.get(site.url("/e"))
    assert failed.value.transient is transient and failed.value.status == status


def test_a_refused_connection_is_a_transient_error() -> None:
    from worker.embedded import free_port

    with Fetcher(LOCAL) as fetcher, pytest.raises(FetchError, match="could not fetch") as failed:
        fetcher.get(f"http://127.0.0.1:{free_port()}/")
    assert failed.value.transient


# ------------------------------------------------------------------------- pages


def test_a_page_gives_its_main_text_without_chrome(site: LocalSite) -> None:
    site.routes["/story"] = Reply(page_html("Battalions deploy north", STORY).encode())
    with Fetcher(LOCAL) as fetcher:
        page = fetch_page(fetcher, site.url("/story"))
    for paragraph in STORY:
        assert paragraph in page.text
    for chrome in ("navigation link", "cookies", "footer text", "All rights reserved"):
        assert chrome not in page.text
    assert page.meta["title"].startswith("Battalions deploy north")


def test_a_page_in_a_legacy_charset_is_decoded(site: LocalSite) -> None:
    html = page_html(
        "Défense", ["Le ministère de la Défense a confirmé le déploiement des troupes."] * 3
    )
    site.routes["/fr"] = Reply(html.encode("latin-1"), content_type="text/html; charset=iso-8859-1")
    with Fetcher(LOCAL) as fetcher:
        page = fetch_page(fetcher, site.url("/fr"))
    assert "ministère de la Défense" in page.text


def test_a_non_html_answer_is_not_a_page(site: LocalSite) -> None:
    site.routes["/pdf"] = Reply(b"%PDF-1.4", content_type="application/pdf")
    with Fetcher(LOCAL) as fetcher, pytest.raises(FetchError, match="not an HTML page"):
        fetch_page(fetcher, site.url("/pdf"))


# ------------------------------------------------------------------------- feeds

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Example Wire</title><link>{base}/</link>
<description>news</description>
<item><title>First story</title><link>{base}/a/1?utm_source=rss</link><guid>urn:ex:1</guid>
<description>&lt;p&gt;The feed's own summary of the first story.&lt;/p&gt;</description>
<pubDate>Mon, 02 Mar 2026 08:00:00 GMT</pubDate><author>desk@example.org (Jane Roe)</author></item>
<item><title>Second story</title><link>/a/2</link>
<description>Second summary.</description></item>
<item><title>No link at all</title><description>Only text here.</description></item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom Wire</title><id>urn:atom</id>
<updated>2026-03-02T09:00:00Z</updated>
<entry><title>Atom one</title><id>tag:ex,2026:1</id><link href="https://news.example.org/x/1"/>
<updated>2026-03-02T09:00:00Z</updated>
<content type="html">&lt;p&gt;Full &lt;b&gt;content&lt;/b&gt; of the atom entry.&lt;/p&gt;</content></entry>
</feed>"""


def test_rss_entries_have_keys_links_and_their_own_text() -> None:
    base = "http://feeds.example.org"
    result = parse_feed(RSS.format(base=base).encode(), base_url=base + "/rss.xml")
    assert result.title == "Example Wire"
    first, second, third = result.entries
    assert first.link == "http://feeds.example.org/a/1"  # normalised: no utm_ parameter
    assert first.entry_id == "urn:ex:1" and first.ref == "urn:ex:1"
    assert first.text == "The feed's own summary of the first story."
    assert first.published_at == "2026-03-02T08:00:00+00:00"
    assert second.link == "http://feeds.example.org/a/2" and second.entry_id is None
    assert third.link is None and third.text == "Only text here."
    assert len({first.key, second.key, third.key}) == 3
    again = parse_feed(RSS.format(base=base).encode(), base_url=base + "/rss.xml")
    assert [e.key for e in again.entries] == [e.key for e in result.entries]


def test_atom_entries_are_read_too() -> None:
    result = parse_feed(ATOM.encode(), base_url="https://news.example.org/atom")
    (entry,) = result.entries
    assert entry.title == "Atom one" and entry.link == "https://news.example.org/x/1"
    assert entry.text == "Full content of the atom entry."
    assert entry.published_at == "2026-03-02T09:00:00+00:00"


def test_a_page_that_is_not_a_feed_is_an_error() -> None:
    with pytest.raises(FetchError, match="not an RSS or Atom feed"):
        parse_feed(b"<html><body><p>hello</p></body></html>", base_url="http://x.test/")


def test_feeds_use_conditional_get(site: LocalSite) -> None:
    stamp = http_date(time.time() - 60)
    site.routes["/rss"] = Reply(
        RSS.format(base=site.base).encode(),
        content_type="application/rss+xml",
        etag='"v1"',
        last_modified=stamp,
    )
    with Fetcher(LOCAL) as fetcher:
        first = fetch_feed(fetcher, site.url("/rss"))
        assert not first.not_modified and len(first.entries) == 3
        assert first.etag == '"v1"' and first.last_modified == stamp
        second = fetch_feed(fetcher, site.url("/rss"), etag=first.etag, last_modified=stamp)
    assert second.not_modified and second.entries == []
    assert site.not_modified["/rss"] == 1


# ------------------------------------------------------------------------- folders


def test_a_folder_lists_new_files_once_and_moves_them_to_done(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Title\n\nBody text.")
    (tmp_path / "b.jsonl").write_text('{"body": "x"}\n')
    (tmp_path / "ignored.pdf").write_bytes(b"%PDF")
    (tmp_path / ".hidden.txt").write_text("temp")
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "old.txt").write_text("done before")
    found = list(scan_folder(tmp_path, settle=0))
    assert [f.relative for f in found] == ["a.txt", "b.jsonl"]
    assert list(scan_folder(tmp_path, settle=60)) == []  # too fresh: maybe still being written
    moved = move_to_done(tmp_path, found[0])
    assert moved == tmp_path / "done" / "a.txt" and moved.read_text().startswith("Title")
    (tmp_path / "a.txt").write_text("Another\n\nA new text under the same name.")
    (again,) = [f for f in scan_folder(tmp_path, settle=0) if f.relative == "a.txt"]
    assert again.key != found[0].key  # same path, new content: a new file
    assert move_to_done(tmp_path, again).name.startswith("a.")


def test_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="does not exist"):
        list(scan_folder(tmp_path / "nope"))


# --------------------------------------------------------------------------------- payload builders


def test_page_payload_prefers_feed_hints_then_page_metadata() -> None:
    from worker.sources import page_payload

    request = {"url": "https://a.example/1", "source": None, "hints": {"title": "From feed"}}
    meta = {"title": "From page", "author": "A. Writer", "date": "2026-03-01", "sitename": "A"}
    assert page_payload("Body.", meta, request) == {
        "body": "Body.", "url": "https://a.example/1", "origin": "page", "title": "From feed",
        "author": "A. Writer", "published_at": "2026-03-01T00:00:00", "source": "A",
    }  # fmt: skip
    assert "published_at" not in page_payload("Body.", {"date": "soon"}, {})


def test_feed_payload_is_the_entrys_own_text_or_none() -> None:
    from worker.sources import FeedEntry, feed_hints, feed_payload

    entry = FeedEntry(key="k", ref="r", link="https://a.example/1", title="T", author=None,
                      published_at=None, entry_id="e1", text="Feed text.")  # fmt: skip
    assert feed_hints(entry) == {"title": "T", "id": "e1"}
    assert feed_payload(entry, "wire") == {"body": "Feed text.", "url": "https://a.example/1",
                                           "source": "wire", "origin": "feed", "title": "T",
                                           "id": "e1"}  # fmt: skip
    assert feed_payload(FeedEntry(key="k", ref="r", link=None, title=None, author=None,
                                  published_at=None, entry_id=None, text=""), None) is None  # fmt: skip
