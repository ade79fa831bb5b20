"""The dashboard end to end: a live `newsclass api` and headless Chromium (Debian's `chromium`
package, installed here with apt-get where absent), checking what the page shows."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import lxml.html
import pytest

from tests.conftest import service_missing
from tests.integration.test_api import wait_for_http
from tests.integration.test_query import BY_KEY, SPECS, newest_first, seed
from worker import db
from worker.embedded import free_port

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def chromium() -> str:
    """/usr/bin/chromium, installed with apt-get when absent and apt is there; else skip (fail
    under CI) with the reason."""
    if CHROMIUM.is_file():
        return str(CHROMIUM)
    apt = shutil.which("apt-get")
    if apt is None:
        service_missing(f"no {CHROMIUM} and no apt-get to install Debian's chromium package")
    if os.geteuid() != 0:
        service_missing(f"no {CHROMIUM}; installing it with apt-get needs root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [str(apt), "install", "-y", "chromium"]
    result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:  # stale package lists: refresh them once and retry
        subprocess.run([str(apt), "update"], env=env, capture_output=True, timeout=300)
        result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
    if not CHROMIUM.is_file():
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        service_missing(f"apt-get install -y chromium did not give {CHROMIUM}: {' '.join(tail)}")
    return str(CHROMIUM)


@pytest.fixture
def dashboard(tmp_path: Path, broker_url: str) -> Iterator[str]:
    """`newsclass api` over a SQLite database holding the test articles; yields its base URL."""
    database_url = f"sqlite:///{tmp_path / 'newsclass.db'}"
    db.upgrade(database_url)
    seed(database_url)
    port = free_port()
    env = {**os.environ, "NEWSCLASS_DATABASE_URL": database_url, "NEWSCLASS_BROKER_URL": broker_url}
    log_path = tmp_path / "api.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "worker", "api", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_for_http(f"http://127.0.0.1:{port}/healthz", proc, log_path)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=15)


def browse(chromium: str, url: str, profile: Path, *flags: str) -> str:
    args = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", "--window-size=1200,1000", *flags, url,
    ]  # fmt: skip
    result = subprocess.run(args, capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.timeout(900)  # the first run may install chromium
def test_dashboard_in_headless_chromium(chromium: str, dashboard: str, tmp_path: Path) -> None:
    page = lxml.html.fromstring(browse(chromium, dashboard + "/", tmp_path / "p1", "--dump-dom"))

    assert page.findtext(".//title") == "newsclass: topics in the news"
    summary = page.get_element_by_id("summary").text_content()
    assert f"{len(SPECS)} articles stored" in summary
    assert "3 defence, 3 trade, 2 domestic_politics" in summary

    # Topic volume: one line per label, one point per day from the first article to the last.
    assert "by day" in page.get_element_by_id("volume-section").text_content()
    chart = page.get_element_by_id("volume")
    lines = chart.xpath(".//*[local-name()='polyline']")
    assert sorted(line.get("data-label") for line in lines) == [
        "defence",
        "domestic_politics",
        "trade",
    ]
    points = chart.xpath(".//*[local-name()='circle']")
    days = {p.get("data-period") for p in points}
    assert len(days) == 60 and min(days) == "2026-01-05" and max(days) == "2026-03-05"
    counts = {(p.get("data-label"), p.get("data-period")): int(p.get("data-count")) for p in points}
    assert counts[("defence", "2026-01-05")] == 1
    assert counts[("trade", "2026-01-20")] == 1 and counts[("defence", "2026-01-20")] == 1
    assert counts[("trade", "2026-03-05")] == 1 and counts[("defence", "2026-03-05")] == 0
    assert sum(counts.values()) == 8  # labels given under each article's current model version

    # Latest articles, newest first, with their labels and scores.
    rows = page.get_element_by_id("latest").xpath(".//tbody/tr")
    titles = [row.xpath("./td[2]")[0].text_content() for row in rows]
    assert titles == [BY_KEY[k].title for k in newest_first([s.key for s in SPECS])]
    first = rows[0].xpath("./td[4]")[0].text_content()
    assert "trade 0.95" in first
    comet = rows[titles.index("Comet seen over the coast")].xpath("./td[4]")[0].text_content()
    assert comet.strip() == "none"

    # The label links filter the list.
    trade = lxml.html.fromstring(
        browse(chromium, dashboard + "/?label=trade", tmp_path / "p2", "--dump-dom")
    )
    trade_titles = [
        r.xpath("./td[2]")[0].text_content() for r in trade.xpath("//table[@id='latest']/tbody/tr")
    ]
    assert trade_titles == [BY_KEY[k].title for k in newest_first(["steel", "row", "duties"])]
    assert trade.xpath("//nav[@id='label-filter']/a[@class='current']")[0].text_content() == "trade"

    # And it renders: a full-page screenshot that is not blank.
    shot = tmp_path / "dashboard.png"
    browse(chromium, dashboard + "/", tmp_path / "p3", f"--screenshot={shot}", "--hide-scrollbars")
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000
