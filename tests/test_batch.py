"""POST /loans/batch: each item checked like POST /loans; accepted items committed
together, refused ones write nothing; idempotent as a whole."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import LedgerEntry, Loan
from tests.fixtures.factories import member_enterprise, skd_filing, xb_enterprise


def _count(session: Session, model: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_batch_results_per_item_and_only_accepted_items_written(
    client: TestClient,
    auth,
    session: Session,  # type: ignore[no-untyped-def]
) -> None:
    a, b = member_enterprise(session).credit_code, member_enterprise(session).credit_code
    x = xb_enterprise(session).credit_code
    loans, entries = _count(session, Loan), _count(session, LedgerEntry)
    items = [
        skd_filing(a, "B-1"),
        skd_filing(b, "B-2", annual_rate_bp=351, principal="5000000.01"),  # two rules broken
        skd_filing(a, "B-3"),  # SKD-F3 across the batch: item 0 took the enterprise
        {"program": "SKD", "contract_no": "B-4", "principal": "12.345"},  # malformed
        {**skd_filing(x, "B-5"), "program": "XB", "annual_rate_bp": 380},
        skd_filing(b, "B-1"),  # the contract number item 0 used
    ]
    r = client.post("/api/v1/loans/batch", headers=auth("bank_jsb"), json={"items": items})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["accepted"], body["refused"]) == (2, 4)
    res = body["results"]
    assert [x["status"] for x in res] == [
        "accepted",
        "refused",
        "refused",
        "refused",
        "accepted",
        "refused",
    ]
    assert {e["code"] for e in res[1]["errors"]} == {"rate_above_cap", "principal_above_max"}
    assert res[1]["errors"][0]["loc"][:2] == ["items", 1]
    assert res[2]["code"] == "enterprise_has_active_loan"
    assert res[3]["code"] == "validation_error" and res[3]["contract_no"] == "B-4"
    assert {tuple(e["loc"][2:]) for e in res[3]["errors"]} >= {
        ("principal",),
        ("enterprise_credit_code",),
    }
    assert res[5]["code"] == "already_exists"
    assert _count(session, Loan) == loans + 2  # refused items left nothing
    # the batch's exposure: one entry for its SKD loan's books, one for its XB loan's
    assert _count(session, LedgerEntry) == entries + 2
    view = client.get(f"/api/v1/loans/{res[4]['loan_id']}", headers=auth("bank_jsb")).json()
    assert (view["program"], view["contract_no"]) == ("XB", "B-5")


def test_batch_is_idempotent_as_a_whole(client: TestClient, auth, session: Session) -> None:  # type: ignore[no-untyped-def]
    items = [skd_filing(member_enterprise(session).credit_code, f"I-{i}") for i in range(1)]
    items.append(skd_filing(member_enterprise(session).credit_code, "I-1"))
    h = {**auth("bank_jsb"), "Idempotency-Key": "batch-1"}
    first = client.post("/api/v1/loans/batch", headers=h, json={"items": items})
    loans = _count(session, Loan)
    again = client.post("/api/v1/loans/batch", headers=h, json={"items": items})
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert _count(session, Loan) == loans
    other = client.post("/api/v1/loans/batch", headers=h, json={"items": items[:1]})
    assert other.status_code == 409


def test_batch_limits_and_roles(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    empty = client.post("/api/v1/loans/batch", headers=auth("bank_jsb"), json={"items": []})
    assert empty.status_code == 422
    many = client.post(
        "/api/v1/loans/batch", headers=auth("bank_jsb"), json={"items": [{}] * 10_001}
    )
    assert many.status_code == 422 and "items" in many.text
    assert (
        client.post("/api/v1/loans/batch", headers=auth("province"), json={"items": [{}]})
    ).status_code == 403


def test_batch_and_single_filings_decide_alike(
    client: TestClient,
    auth,
    session: Session,  # type: ignore[no-untyped-def]
) -> None:
    """The batch looks SKD facts up for all items at once; the decisions must be those of
    POST /loans one by one, item for item (same rules, same order, same interactions)."""

    def scenario(tag: str) -> list[dict[str, Any]]:
        ok = member_enterprise(session).credit_code
        big = member_enterprise(session, revenue_yuan=45_000_000).credit_code
        red = member_enterprise(session, env_credit_rating="red").credit_code
        outsider = member_enterprise(session, region="320500").credit_code
        return [
            skd_filing(ok, f"{tag}-1"),
            skd_filing(ok, f"{tag}-2"),  # SKD-F3 against item 0
            skd_filing(big, f"{tag}-3", principal="10000000.00", annual_rate_bp=380),
            skd_filing(
                big, f"{tag}-4", principal="10000000.01", annual_rate_bp=381, product="SKD1"
            ),
            skd_filing(red, f"{tag}-5"),
            skd_filing(outsider, f"{tag}-6", disbursed_on="2026-03-20"),  # 6th working day
            skd_filing("91320100MA1ZZZZZZX", f"{tag}-7"),  # no such enterprise
            skd_filing(ok, f"{tag}-1"),  # contract of item 0
        ]

    single_items, batch_items = scenario("S"), scenario("B")
    single = []
    for item in single_items:
        r = client.post("/api/v1/loans", headers=auth("bank_jsb"), json=item)
        codes = sorted(e.get("code") or "" for e in r.json().get("errors", []))
        single.append(
            (r.status_code == 201, r.json().get("code") if r.status_code != 201 else None, codes)
        )
    r = client.post("/api/v1/loans/batch", headers=auth("bank_jsb"), json={"items": batch_items})
    batch = [
        (x["status"] == "accepted", x["code"], sorted(e.get("code") or "" for e in x["errors"]))
        for x in r.json()["results"]
    ]
    assert batch == single
    assert [accepted for accepted, *_ in batch] == [
        True,
        False,
        True,
        False,
        False,
        False,
        False,
        False,
    ]


def test_a_contract_number_is_taken_across_programmes_within_a_batch(
    client: TestClient,
    auth,
    session: Session,  # type: ignore[no-untyped-def]
) -> None:
    skd = skd_filing(member_enterprise(session).credit_code, "D-1")
    xb = {
        **skd_filing(xb_enterprise(session).credit_code, "D-1"),
        "program": "XB",
        "annual_rate_bp": 380,
    }
    r = client.post("/api/v1/loans/batch", headers=auth("bank_jsb"), json={"items": [skd, xb]})
    assert r.status_code == 200, r.text
    assert [(x["status"], x["code"]) for x in r.json()["results"]] == [
        ("accepted", None),
        ("refused", "already_exists"),
    ]
