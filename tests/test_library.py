"""The 苏科贷 enterprise library (SKD-E1)."""

from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Enterprise, LibraryEvent
from app.programs.sukedai.library import check_library_criteria, percent
from tests.fixtures.seed import GANGCHENG, XUWEI  # no IP, no R&D; eligible, not reviewed


def _enterprise(**facts: object) -> Enterprise:
    base = dict(
        credit_code="X",
        name="测试",
        region_code="320100",
        independent_legal_person=True,
        registered_on=date(2020, 1, 1),
        prior_year_revenue_fen=10_000_000_00,
        employees=100,
        rd_staff_share_bp=1000,
        rd_spend_share_bp=300,
        ip_count=1,
    )
    return Enterprise(**{**base, **facts})


def _failed(e: Enterprise) -> set[str]:
    return {c.code for c in check_library_criteria(e) if not c.passed}


def test_skd_e1_thresholds_are_inclusive_where_the_rule_says_at_least() -> None:
    assert _failed(_enterprise()) == set()  # exactly 10 % staff, 3 % spend, 1 IP
    assert _failed(_enterprise(rd_staff_share_bp=999)) == {"rd_staff_share"}
    assert _failed(_enterprise(rd_spend_share_bp=299)) == {"rd_spend_share"}
    assert _failed(_enterprise(ip_count=0)) == {"owns_ip"}


@pytest.mark.parametrize(
    ("revenue_yuan", "employees", "ok"),
    [
        (399_999_999, 5000, True),  # revenue below 400,000,000 suffices
        (400_000_000, 999, True),  # … or fewer than 1,000 employees
        (400_000_000, 1000, False),  # neither: "< 400,000,000 or < 1,000" fails
        (500_000_000, 1000, False),
    ],
)
def test_skd_e1_size_is_revenue_or_employees(revenue_yuan: int, employees: int, ok: bool) -> None:
    e = _enterprise(prior_year_revenue_fen=revenue_yuan * 100, employees=employees)
    assert ("size" not in _failed(e)) is ok


def test_skd_e1_jiangsu_independent_legal_person() -> None:
    assert _failed(_enterprise(region_code="310100")) == {"jiangsu_independent_legal_person"}
    assert _failed(_enterprise(independent_legal_person=False)) == {
        "jiangsu_independent_legal_person"
    }


def test_percent_is_exact() -> None:
    assert [percent(b) for b in (1000, 350, 300, 5, 0, 10000)] == [
        "10 %",
        "3.5 %",
        "3 %",
        "0.05 %",
        "0 %",
        "100 %",
    ]


def test_refusal_lists_every_failed_criterion_and_writes_nothing(
    client: TestClient,
    auth,
    session: Session,  # type: ignore[no-untyped-def]
) -> None:
    before = session.scalar(select(func.count()).select_from(LibraryEvent))
    r = client.post(
        f"/api/v1/enterprises/{GANGCHENG}/library-admission",
        headers=auth("city_lyg"),
        json={"comment": "申请入库"},
    )
    assert r.status_code == 422, r.text
    body = r.json()
    # the first failed criterion's code (in the order of the 2017 rules), every one listed
    assert body["code"] == body["errors"][0]["code"] == "owns_ip" and body["rule"] == "SKD-E1"
    assert {e["code"] for e in body["errors"]} == {"owns_ip", "rd_staff_share", "rd_spend_share"}
    assert all(e["rule"] == "SKD-E1" for e in body["errors"])
    assert session.scalar(select(func.count()).select_from(LibraryEvent)) == before


def test_admission_update_removal_and_readmission_history(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    url = f"/api/v1/enterprises/{XUWEI}"
    assert client.get(f"{url}/library", headers=auth("bank_lyg")).json()["member"] is False
    admitted = client.post(
        f"{url}/library-admission", headers=auth("city_lyg"), json={"comment": "符合条件"}
    )
    assert admitted.status_code == 201, admitted.text
    assert admitted.json()["member"] is True and admitted.json()["member_since"] == "2026-03-31"
    assert {c["code"] for c in admitted.json()["history"][0]["criteria"]} == {
        "jiangsu_independent_legal_person",
        "owns_ip",
        "size",
        "rd_staff_share",
        "rd_spend_share",
    }
    again = client.post(f"{url}/library-admission", headers=auth("city_lyg"), json={})
    assert [e["action"] for e in again.json()["history"]] == ["admitted", "updated"]
    removed = client.post(
        f"{url}/library-removal", headers=auth("city_lyg"), json={"reason": "企业申请出库"}
    )
    assert removed.json()["member"] is False and removed.json()["member_since"] is None
    twice = client.post(f"{url}/library-removal", headers=auth("city_lyg"), json={"reason": "x2"})
    assert twice.status_code == 409 and twice.json()["code"] == "not_a_member"
    back = client.post(f"{url}/library-admission", headers=auth("city_lyg"), json={})
    assert [e["action"] for e in back.json()["history"]] == [
        "admitted",
        "updated",
        "removed",
        "admitted",
    ]
    assert back.json()["member"] is True


def test_reviewer_acts_only_in_their_region(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        f"/api/v1/enterprises/{XUWEI}/library-admission", headers=auth("city_nanjing"), json={}
    )
    assert r.status_code == 403 and r.json()["code"] == "outside_region"
    # a functional zone (徐圩新区) belongs to 连云港: its reviewer may act
    ok = client.post(
        f"/api/v1/enterprises/{XUWEI}/library-admission", headers=auth("city_lyg"), json={}
    )
    assert ok.status_code == 201
    for user in ("bank_lyg", "province", "admin"):
        denied = client.post(
            f"/api/v1/enterprises/{XUWEI}/library-removal",
            headers=auth(user),
            json={"reason": "no"},
        )
        assert denied.status_code == 403, user
