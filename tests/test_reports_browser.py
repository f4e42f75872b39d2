"""The quarterly report page in a real browser (issue part 7): Playwright for Python
drives Debian's chromium (`/usr/bin/chromium`, headless; `.ci/run` installs it and
fonts-noto-cjk with apt, no browser is ever downloaded) against a real uvicorn server on
a free port, over a test database holding a small book (`loan_book`), as the regulator
(the bearer token sent with every request of the browser context). It asserts the
page's title, that every chart's SVG renders with a size, the 3 % NPL line, and that
Chinese text renders as glyphs rather than empty boxes. Screenshots go to
`test-artifacts/reports/` (not versioned).

Runs on SQLite only: what it checks is the browser's rendering of the page, which the
database does not change (the endpoints are tested on both in test_reports_runs.py)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.kit.clock import Clock
from app.main import create_app
from tests.fixtures.factories import loan_book

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "reports"
DAY = date(2026, 10, 15)
PAGE = "/api/v1/reports/quarterly.html?program=SKD&year=2026&quarter=3"
REPORT = "/api/v1/reports/quarterly?program=SKD&year=2026&quarter=3"

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(
    settings: Settings, engine: Engine, session_factory: sessionmaker[Session]
) -> Iterator[str]:
    """The app on the test's database connection, on business date 2026-10-15, served
    by uvicorn in a thread."""
    app = create_app(settings, engine=engine, session_factory=session_factory, clock=Clock(DAY))
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=20)


# Two different CJK characters drawn in the page's font: real glyphs differ, the boxes a
# missing font leaves do not; an empty drawing has no ink.
GLYPHS_JS = """() => {
  const font = getComputedStyle(document.body).fontFamily;
  const ink = (ch) => {
    const c = document.createElement('canvas');
    c.width = 64; c.height = 64;
    const g = c.getContext('2d');
    g.font = '48px ' + font;
    g.fillStyle = '#000';
    g.fillText(ch, 4, 52);
    return Array.from(g.getImageData(0, 0, 64, 64).data.filter((_, i) => i % 4 === 3));
  };
  const a = ink('风'), b = ink('险');
  const h1 = document.querySelector('h1').getBoundingClientRect();
  return {
    font: font,
    inked: a.some(v => v > 0) && b.some(v => v > 0),
    differ: a.some((v, i) => v !== b[i]),
    titleWidth: h1.width,
  };
}"""


def test_skd_q3_quarterly_page_renders_its_charts_in_chromium(
    server: str, session: Session, auth: Callable[[str], dict[str, str]]
) -> None:
    """SKD-Q3: the regulator opens the quarterly page of a small book in chromium: the
    title, every chart's SVG with a non-zero size, the 3 % NPL line, Chinese glyphs
    rendered."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
    )
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium fonts-noto-cjk)")
    loan_book(session)  # 江苏银行's and 工商银行's loans 90+ days past due by 2026-09-30
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            context = browser.new_context(
                extra_http_headers=auth("regulator"),
                viewport={"width": 1280, "height": 900},
                locale="zh-CN",
            )
            report = context.request.get(server + REPORT)
            assert report.status == 200, report.text()
            doc = report.json()
            page = context.new_page()
            response = page.goto(server + PAGE)
            assert response is not None and response.status == 200, response and response.text()
            assert response.headers["content-type"] == "text/html; charset=utf-8"
            assert response.headers["x-content-sha256"] == report.headers["x-content-sha256"]
            assert page.title() == f"{doc['title_zh']} · {doc['title_en']}"
            charts = page.locator("svg.chart")
            assert charts.count() == len(doc["charts"]) > 0
            for i in range(charts.count()):
                box = charts.nth(i).bounding_box()
                assert box is not None and box["width"] > 100 and box["height"] > 100, i
                assert charts.nth(i).locator("rect.bar, circle.point").count() > 0, i
            npl = page.locator('svg[data-chart="npl_by_bank"]')
            line = npl.locator('line.threshold[data-threshold-bp="300"]')
            assert line.count() == 1
            box = line.bounding_box()
            assert box is not None and box["width"] > 100
            label = npl.locator("text.threshold-label").text_content()
            assert label is not None and "3.00% 阈值" in label
            glyphs = page.evaluate(GLYPHS_JS)
            assert "Noto Sans CJK SC" in glyphs["font"]
            assert glyphs["inked"] and glyphs["differ"], glyphs
            assert glyphs["titleWidth"] > 0
            page.screenshot(path=str(ARTIFACTS / "quarterly-page.png"), full_page=True)
            npl.screenshot(path=str(ARTIFACTS / "quarterly-npl-chart.png"))
        finally:
            browser.close()
    assert (ARTIFACTS / "quarterly-page.png").stat().st_size > 10_000
