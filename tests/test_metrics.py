"""GET /metrics (Prometheus): requests per route template, the claims by programme and
status and the journal's length read from the database, and who may read it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.kit.clock import Clock
from app.main import create_app
from app.models import Claim, LedgerEntry
from app.models.claim import CLAIM_STATUSES
from tests.conftest import TEST_TODAY
from tests.fixtures import factories

TOKEN = "metrics-token-0123456789abcdef"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient, **headers: str) -> Samples:
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def labelled(samples: Samples, name: str, label: str) -> set[str]:
    return {dict(lbls)[label] for n, lbls in samples if n == name and label in dict(lbls)}


def claims_gauge(samples: Samples) -> dict[tuple[str, str], float]:
    return {
        (dict(lbls)["program"], dict(lbls)["status"]): v
        for (n, lbls), v in samples.items()
        if n == "ledger_claims"
    }


def _app(
    settings: Settings, engine: Engine, session_factory: sessionmaker[Session]
) -> Iterator[TestClient]:
    app = create_app(
        settings, engine=engine, session_factory=session_factory, clock=Clock(TEST_TODAY)
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def production(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        app_env="production",
        jwt_secret=SecretStr("p" * 40),
        person_id_key=SecretStr("k" * 40),
        log_json=False,
    )


def test_requests_are_counted_per_route_template_never_per_raw_path(
    client: TestClient, auth: object
) -> None:
    for claim_id in (987654321, 987654322):  # anonymous: 401
        assert client.get(f"/api/v1/claims/{claim_id}").status_code == 401
    assert client.get("/api/v1/auth/me", headers=auth("regulator")).status_code == 200  # type: ignore[operator]
    assert client.get("/no/such/path/987654324").status_code == 404
    client.get("/api/v1/claims/987654325/", follow_redirects=False)  # slash redirect
    client.get("/metrics")

    samples = scrape(client)
    template = "/api/v1/claims/{claim_id}"
    total = "http_requests_total"
    assert sample(samples, total, handler=template, method="GET", status="401") == 2
    assert sample(samples, total, handler="/api/v1/auth/me", method="GET", status="200") == 1
    assert sample(samples, total, handler="none", method="GET", status="404") == 1
    assert sample(samples, total, handler="none", method="GET", status="307") == 1
    handlers = labelled(samples, total, "handler")
    assert not [h for h in handlers if "98765432" in h], handlers  # no raw ids: cardinality
    assert "/metrics" not in handlers  # the scrapes themselves are not counted
    # latency per route template, a histogram
    assert sample(samples, "http_request_duration_seconds_count", handler=template, method="GET")
    assert sample(
        samples, "http_request_duration_seconds_bucket", handler=template, method="GET", le="+Inf"
    ) == sample(samples, "http_request_duration_seconds_count", handler=template, method="GET")


def test_a_method_not_allowed_a_mount_and_a_route_added_later_are_counted_by_template(
    app: FastAPI, client: TestClient
) -> None:
    # the middleware flattens the route table at the first request and again when the
    # table grows: a route included afterwards is still counted under its template
    assert client.post("/healthz").status_code == 405  # the path's route, not its method
    assert client.get("/static-docs/swagger-ui.css").status_code == 200  # a mount

    router = APIRouter()

    @router.get("/added-later/{thing_id}")
    def added_later(thing_id: int) -> dict[str, int]:
        return {"thing_id": thing_id}

    app.include_router(router)
    assert client.get("/added-later/987654326").status_code == 200

    samples = scrape(client)
    total = "http_requests_total"
    assert sample(samples, total, handler="/healthz", method="POST", status="405") == 1
    assert sample(samples, total, handler="/static-docs", method="GET", status="200") == 1
    assert (
        sample(samples, total, handler="/added-later/{thing_id}", method="GET", status="200") == 1
    )


def test_claims_by_programme_and_status_and_the_journal_match_the_database(
    client: TestClient, session: Session
) -> None:
    before = scrape(client)
    assert sample(before, "ledger_business_metrics_up") == 1
    # every known programme × status is there, 0 when no claim has it
    assert {s for _, s in claims_gauge(before)} == set(CLAIM_STATUSES)
    assert {p for p, _ in claims_gauge(before)} >= {"SKD", "XB"}
    entries_before = sample(before, "ledger_entries_total")
    assert entries_before == session.scalar(select(func.count()).select_from(LedgerEntry)) > 0

    factories.skd_claim(session)
    factories.skd_claim(session, status="paid")  # the city fund's payment is journalled
    factories.skd_claim(session, status="paid", filed=date(2026, 9, 2))
    factories.xb_claim(session, status="manager_reviewed")

    after = scrape(client)
    rows = session.execute(
        select(Claim.program, Claim.status, func.count()).group_by(Claim.program, Claim.status)
    ).all()
    in_db = {(p, s): n for p, s, n in rows}
    gauge = claims_gauge(after)
    assert {k: v for k, v in gauge.items() if v} == in_db
    delta = {
        k: v - claims_gauge(before)[k] for k, v in gauge.items() if v != claims_gauge(before)[k]
    }
    assert delta == {("SKD", "submitted"): 1, ("SKD", "paid"): 2, ("XB", "manager_reviewed"): 1}
    if session.get_bind().dialect.name == "postgresql":  # the scrape's SET LOCAL is undone
        assert session.scalar(text("SHOW statement_timeout")) == "0"
    entries = sample(after, "ledger_entries_total")
    assert entries == session.scalar(select(func.count()).select_from(LedgerEntry))
    assert entries is not None and entries_before is not None and entries > entries_before


def test_an_unreachable_database_leaves_metrics_up_without_business_figures(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    broken = settings.model_copy(update={"database_url": "postgresql://nobody@127.0.0.1:1/x"})
    with (
        TestClient(create_app(broken), raise_server_exceptions=False) as c,
        caplog.at_level(logging.WARNING, logger="app.metrics"),
    ):
        assert c.get("/healthz").status_code == 200
        samples = scrape(c)
    assert sample(samples, "ledger_business_metrics_up") == 0
    assert not claims_gauge(samples)
    assert sample(samples, "ledger_entries_total") is None
    assert sample(samples, "http_requests_total", handler="/healthz", method="GET", status="200")
    assert [r for r in caplog.records if r.name == "app.metrics" and r.exc_info]


def test_each_app_has_its_own_registry(
    client: TestClient, settings: Settings, engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    client.get("/healthz")
    assert sample(
        scrape(client), "http_requests_total", handler="/healthz", method="GET", status="200"
    )
    for other in _app(settings, engine, session_factory):
        assert (
            sample(
                scrape(other), "http_requests_total", handler="/healthz", method="GET", status="200"
            )
            is None
        )


def test_metrics_are_not_in_the_openapi_document(client: TestClient, app: FastAPI) -> None:
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_with_a_token_metrics_need_it(
    settings: Settings, engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    guarded = settings.model_copy(update={"metrics_token": SecretStr(TOKEN)})
    for c in _app(guarded, engine, session_factory):
        missing = c.get("/metrics")
        assert missing.status_code == 401
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert missing.json()["code"] == "not_authenticated"
        wrong = c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}x"})
        assert wrong.status_code == 401
        assert wrong.json()["code"] == "invalid_token"
        basic = c.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"})
        assert basic.status_code == 401
        assert (
            "ledger_claims" in c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
        )


def test_production_without_a_token_does_not_publish_metrics(
    production: Settings, engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    for c in _app(production, engine, session_factory):
        r = c.get("/metrics")
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "not_found"
        assert r.json()["detail"] == c.get("/no-such-path").json()["detail"]  # as unknown


def test_production_with_a_token_publishes_metrics_to_its_holder(
    production: Settings, engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    guarded = production.model_copy(update={"metrics_token": SecretStr(TOKEN)})
    for c in _app(guarded, engine, session_factory):
        assert c.get("/metrics").status_code == 401
        samples = scrape(c, Authorization=f"Bearer {TOKEN}")
        assert sample(samples, "ledger_business_metrics_up") == 1


def test_a_short_metrics_token_is_refused() -> None:
    with pytest.raises(ValueError, match="metrics_token"):
        Settings(metrics_token=SecretStr("short"))


def test_several_workers_share_their_figures_through_the_multiprocess_directory(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PROMETHEUS_MULTIPROC_DIR set: the scrape reads the workers' files and still adds
    the business figures."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    samples = scrape(client)
    assert sample(samples, "ledger_business_metrics_up") == 1
    assert claims_gauge(samples)
