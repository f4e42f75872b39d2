"""The console fund managers work in (issue parts 5 and 7): Swagger UI at `/docs` in a
real browser — Playwright for Python driving Debian's chromium (`/usr/bin/chromium`,
headless; `.ci/run` installs it and fonts-noto-cjk with apt, no browser is downloaded) —
against `make run`'s server (tests/fixtures/live_server.py: uvicorn in a subprocess on
the data `ledger seed-demo` writes, its log in `test-artifacts/swagger/server.log`).

* Typing 代偿 into Swagger's filter shows exactly the tags whose names contain it.
* 苏州's city reviewer clicks Authorize, logs in through the OAuth2 password form, opens
  the claims list, runs it with `awaiting=me` (Try it out), sees a claim waiting for the
  city review, opens the city review, runs it on that claim with the prefilled example
  body (a review with no findings) and sees 200 (SKD-C1).
* The XB committee member finds its queue the same way: the claims waiting for the
  committee's decision (XB-C2).

Screenshots of every step go to `test-artifacts/swagger/` (not versioned). Runs once (no
database backend: the database only serves the page); skipped, saying why, without
Playwright or chromium."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.fixtures.live_server import ARTIFACTS, LiveServer, live_server, seeded_data

# On one xdist worker with tests/test_generated_client.py: the seeded data is made once.
pytestmark = pytest.mark.xdist_group("live_server")

CHROMIUM = "/usr/bin/chromium"
SHOTS = ARTIFACTS / "swagger"
CLAIMS = "/api/v1/claims"
CITY_REVIEW = "/api/v1/claims/{claim_id}/city-review"
LIVE_STATUS = ".live-responses-table tbody tr.response .response-col_status"


@pytest.fixture(scope="module")
def sync_api() -> Any:
    api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
    )
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium fonts-noto-cjk)")
    return api


@pytest.fixture(scope="module")
def server(sync_api: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = seeded_data(tmp_path_factory)
    log = SHOTS / "server.log"
    with live_server(data, tmp_path_factory.mktemp("swagger-server"), log) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser(sync_api: Any, server: LiveServer) -> Iterator[Any]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def document(browser: Any, server: LiveServer) -> dict[str, Any]:
    """The OpenAPI document the console is built from, as the server serves it."""
    context = browser.new_context()
    try:
        answer = context.request.get(server.url + "/openapi.json")
        assert answer.status == 200, answer.text()
        doc: dict[str, Any] = answer.json()
        return doc
    finally:
        context.close()


def _operation(doc: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    op: dict[str, Any] = doc["paths"][path][method]
    return op


@dataclass
class Console:
    """One person's browser tab on `/docs`; every API answer it gets is watched for 5xx."""

    server: LiveServer
    page: Any
    who: str
    answers: list[tuple[int, str, str]] = field(default_factory=list)

    def shot(self, step: str, op: Any = None) -> None:
        """A screenshot of the window; with `op`, scrolled to its server response."""
        if op is not None:
            op.locator(".live-responses-table").evaluate("e => e.scrollIntoView({block: 'center'})")
        self.page.screenshot(path=str(SHOTS / f"{self.who}-{step}.png"), full_page=False)

    def check_server(self) -> None:
        for status, method, url in self.answers:
            self.server.fail_on_server_error(method, url, status)

    def authorize(self, username: str) -> None:
        """Authorize → the OAuth2 password form → Authorize → Close."""
        page = self.page
        page.locator("button.authorize").first.click()
        page.locator("#oauth_username").fill(username)
        page.locator("#oauth_password").fill(self.server.password)
        self.shot("02-login-form")
        with page.expect_response(lambda r: r.url.endswith("/api/v1/auth/token")) as token:
            page.locator(".auth-btn-wrapper button.authorize").click()
        assert token.value.status == 200, token.value.text()
        modal = page.locator(".modal-ux-content")
        modal.get_by_text("Authorized").wait_for()
        assert modal.locator(".auth-btn-wrapper button", has_text="Logout").is_visible()
        self.shot("03-authorized")
        page.locator(".auth-btn-wrapper button.btn-done").click()
        assert page.locator("button.authorize.locked").count() > 0, "the lock did not close"

    def open(self, doc: dict[str, Any], method: str, path: str) -> Any:
        """Expand the operation's tag (first tag), then the operation; Try it out."""
        tag = _operation(doc, method, path)["tags"][0]
        page = self.page
        header = page.locator("h3.opblock-tag").filter(has_text=tag).first
        if header.get_attribute("data-is-open") != "true":
            header.click()
        summary_path = f'.opblock-summary-path[data-path="{path}"]'
        op = page.locator(f".opblock.opblock-{method}:has({summary_path})").first
        op.locator(".opblock-summary").first.click()
        op.locator(".opblock-body").wait_for()
        button = op.locator(".try-out__btn").first
        if button.inner_text().strip() == "Try it out":
            button.click()
        op.locator("button.execute").wait_for()
        return op

    def execute(self, op: Any, path_suffix: str) -> Any:
        """Execute; the network answer (status and JSON) and its row on the page."""
        with self.page.expect_response(
            lambda r: r.request.method != "OPTIONS" and path_suffix in r.url
        ) as answer:
            op.locator("button.execute").click()
        op.locator(LIVE_STATUS).wait_for()
        self.check_server()
        return answer.value

    @staticmethod
    def shown(op: Any) -> tuple[str, bool]:
        """The status Swagger shows for the last answer, and whether it marks it as
        "Undocumented" (a status the operation does not declare)."""
        cell = op.locator(LIVE_STATUS)
        status = cell.inner_text().split()[0]
        return status, cell.locator(".response-undocumented").count() > 0


def _console(browser: Any, server: LiveServer, who: str) -> Iterator[Console]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    try:
        page = context.new_page()
        console = Console(server, page, who)
        page.on(
            "response",
            lambda r: console.answers.append((r.status, r.request.method, r.url)),
        )
        docs = page.goto(server.url + "/docs")
        assert docs is not None and docs.status == 200
        page.locator("h3.opblock-tag").first.wait_for(timeout=30_000)
        console.shot("01-docs")
        yield console
        console.check_server()
    finally:
        context.close()


def _user(server: LiveServer, role: str, scope: str) -> str:
    found = [u for u, (r, s) in server.data.users.items() if (r, s) == (role, scope)]
    assert found, f"`ledger seed-demo` printed no {role} for {scope}: {server.data.users}"
    return found[0]


def _awaiting_me(console: Console, doc: dict[str, Any]) -> tuple[Any, list[dict[str, Any]]]:
    """The claims list with `awaiting=me`, through Try it out; the claims it shows."""
    params = {p["name"]: p for p in _operation(doc, "get", CLAIMS).get("parameters", [])}
    assert "awaiting" in params, (
        "GET /api/v1/claims has no `awaiting` query parameter (issue part 4: the claims "
        "waiting for the caller's role and scope, `awaiting=me`)"
    )
    op = console.open(doc, "get", CLAIMS)
    field_ = op.locator('tr[data-param-name="awaiting"]')
    if field_.locator("select").count():
        field_.locator("select").select_option("me")
    else:
        field_.locator("input").fill("me")
    answer = console.execute(op, "/api/v1/claims?")
    assert "awaiting=me" in answer.url
    assert answer.status == 200, answer.text()
    assert console.shown(op) == ("200", False)
    items: list[dict[str, Any]] = answer.json()["items"]
    console.shot("04-awaiting-me", op)
    return op, items


@pytest.fixture
def visitor(browser: Any, server: LiveServer) -> Iterator[Console]:
    yield from _console(browser, server, "filter")


@pytest.fixture
def city_reviewer(browser: Any, server: LiveServer) -> Iterator[Console]:
    yield from _console(browser, server, "city-reviewer")


@pytest.fixture
def committee(browser: Any, server: LiveServer) -> Iterator[Console]:
    yield from _console(browser, server, "committee")


def test_the_filter_finds_the_claim_steps_by_typing_daichang(
    visitor: Console, document: dict[str, Any]
) -> None:
    """Tags carry Chinese and English names: typing 代偿 (compensation) into Swagger's
    filter shows exactly the tags whose name contains it, and there is at least one."""
    expected = [t["name"] for t in document.get("tags", []) if "代偿" in t["name"]]
    assert expected, "no tag of the served document has 代偿 in its name"
    page = visitor.page
    page.locator(".operation-filter-input").fill("代偿")
    page.wait_for_function(
        "n => document.querySelectorAll('h3.opblock-tag').length === n", arg=len(expected)
    )
    shown = page.locator("h3.opblock-tag").evaluate_all("els => els.map(e => e.dataset.tag)")
    assert shown == expected
    visitor.shot("02-daichang")


def test_city_reviewer_approves_a_claim_from_its_queue(
    city_reviewer: Console, server: LiveServer, document: dict[str, Any]
) -> None:
    """SKD-C1: 苏州's city reviewer authorises in the console, lists the claims awaiting
    them (`awaiting=me`), runs the city review on one with the prefilled example — a
    review with no findings — and sees 200: the claim moves to the province."""
    city_reviewer.authorize(_user(server, "city_reviewer", "320500"))
    _, items = _awaiting_me(city_reviewer, document)
    assert items, "nothing awaits 苏州's city reviewer (the demo has claim(s) for its review)"
    assert {c["next_step"]["stage"] for c in items} == {"city_review"}, items
    assert {(c["program"], c["region_code"]) for c in items} == {("SKD", "320500")}
    claim_id = items[0]["id"]
    shown = city_reviewer.page.locator(".live-responses-table").first.inner_text()
    assert f'"id": {claim_id},' in shown, "the claim is on the page"

    body = _operation(document, "post", CITY_REVIEW)["requestBody"]["content"]["application/json"]
    declared = [e["value"] for e in body.get("examples", {}).values()]
    declared += [body["example"]] if "example" in body else []
    assert declared, "POST …/city-review declares no example body for the console"
    op = city_reviewer.open(document, "post", CITY_REVIEW)
    op.locator('tr[data-param-name="claim_id"] input').fill(str(claim_id))
    prefilled = json.loads(op.locator("textarea.body-param__text").input_value())
    assert prefilled == declared[0], "Swagger prefills the first declared example"
    assert prefilled["decision"] == "approve" and not prefilled.get("findings")
    answer = city_reviewer.execute(op, f"/api/v1/claims/{claim_id}/city-review")
    assert answer.status == 200, answer.text()
    assert city_reviewer.shown(op) == ("200", False)
    reviewed = answer.json()
    assert (reviewed["id"], reviewed["status"]) == (claim_id, "city_approved")
    assert reviewed["next_step"]["stage"] == "province_review"
    city_reviewer.shot("05-city-review-200", op)


def test_xb_committee_finds_its_queue(
    committee: Console, server: LiveServer, document: dict[str, Any]
) -> None:
    """XB-C2: the committee member authorises the same way and lists the claims
    awaiting its decision (`awaiting=me`): the XB claims the manager has reviewed."""
    committee.authorize(_user(server, "committee", "-"))
    _, items = _awaiting_me(committee, document)
    assert items, "nothing awaits the committee (the demo has a manager-reviewed XB claim)"
    assert {c["next_step"]["stage"] for c in items} == {"committee_decision"}, items
    assert {(c["program"], c["status"]) for c in items} == {("XB", "manager_reviewed")}
