"""SKD-A1: every rule refusal of a well-formed filing is kept as one append-only
filing-refusal row, written after the refused request's rollback on its own connection
(single filings) or with the batch (a batch's refused items); the loan, the quota and the
ledger stay untouched. `GET /loans/refusals` lists them in the caller's scope."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import FilingRefusal, LedgerEntry, Loan, ProgramQuota
from tests.fixtures.factories import member_enterprise
from tests.fixtures.seed import LVYUAN, ZHIXIN

URL = "/api/v1/loans"


def skd(code: str, contract: str, **over: Any) -> dict[str, Any]:
    body = {
        "program": "SKD",
        "enterprise_credit_code": code,
        "contract_no": contract,
        "principal": "1000000.00",
        "annual_rate_bp": 340,
        "disbursed_on": "2026-03-24",
        "maturity_on": "2027-03-24",
        "security": "credit",
        "controller_guarantee": True,
    }
    return body | over


def rows(session: Session) -> list[FilingRefusal]:
    session.expire_all()
    return list(session.scalars(select(FilingRefusal).order_by(FilingRefusal.id)))


def books(session: Session) -> tuple[int, int, int]:
    """Loans, ledger entries, and the SKD 2026 quota used: what a refusal never touches."""
    session.expire_all()
    quota = ProgramQuota
    used = session.scalar(select(quota.used_fen).where(quota.program == "SKD", quota.year == 2026))
    return (
        int(session.scalar(select(func.count()).select_from(Loan)) or 0),
        int(session.scalar(select(func.count()).select_from(LedgerEntry)) or 0),
        int(used or 0),
    )


def test_SKD_A1_a_rule_refusal_is_kept_once_and_nothing_else_is_written(
    client: TestClient, auth, session: Session
) -> None:  # type: ignore[no-untyped-def]
    """苏州绿源 is no library member and rated red (SKD-E1, SKD-F4): the 422 writes one
    refusal row, after the rollback; the retry under the same Idempotency-Key is refused
    again and adds none."""
    before = books(session)
    headers = {**auth("bank_jsb"), "Idempotency-Key": "refused-1"}
    first = client.post(URL, headers=headers, json=skd(LVYUAN, "JSB-R-1"))
    assert first.status_code == 422, first.text
    assert books(session) == before
    (row,) = rows(session)
    assert (row.bank_code, row.program, row.enterprise_credit_code, row.contract_no) == (
        "JSB",
        "SKD",
        LVYUAN,
        "JSB-R-1",
    )
    assert (row.principal_fen, str(row.disbursed_on), str(row.business_date)) == (
        1_000_000_00,
        "2026-03-24",
        "2026-03-31",
    )
    errors = first.json()["errors"]
    assert row.rules == sorted({e["rule"] for e in errors}) and {"SKD-E1", "SKD-F4"} <= set(
        row.rules
    )
    assert row.codes == [e["code"] for e in errors]
    assert row.enterprise_id is not None and row.refused_by_id > 0

    again = client.post(URL, headers=headers, json=skd(LVYUAN, "JSB-R-1"))
    assert again.status_code == 422 and "idempotent-replayed" not in again.headers
    assert len(rows(session)) == 1 and books(session) == before
    # another filing refused the same way is another row
    other = client.post(URL, headers=headers | {"Idempotency-Key": "r-2"}, json=skd(LVYUAN, "R-2"))
    assert other.status_code == 422
    assert [r.contract_no for r in rows(session)] == ["JSB-R-1", "R-2"]


def test_SKD_A1_malformed_unknown_duplicate_and_faults_record_nothing(
    client: TestClient, auth, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    h = auth("bank_jsb")
    bad = client.post(URL, headers=h, json=skd(LVYUAN, "M-1", principal="12.345"))
    assert bad.status_code == 422 and bad.json()["code"] == "validation_error"
    unknown = client.post(URL, headers=h, json=skd("91320100MA1ZZZZZZX", "M-2"))
    assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_enterprise"
    ok = member_enterprise(session).credit_code
    assert client.post(URL, headers=h, json=skd(ok, "M-3")).status_code == 201
    assert client.post(URL, headers=h, json=skd(ok, "M-3")).status_code == 409
    assert client.post(URL, headers=auth("province"), json=skd(LVYUAN, "M-4")).status_code == 403
    assert rows(session) == []
    # a batch whose refused item was noted, then a fault of the service: 500, no record
    before = books(session)

    def boom(*_: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("app.loans.schedule.plan", boom)
    items = [skd(LVYUAN, "M-5"), skd(member_enterprise(session).credit_code, "M-6")]
    r = client.post(f"{URL}/batch", headers=h, json={"items": items})
    assert r.status_code == 500
    assert rows(session) == [] and books(session) == before


def test_SKD_A1_a_batch_keeps_one_row_per_refused_item(
    client: TestClient, auth, session: Session
) -> None:  # type: ignore[no-untyped-def]
    ok, dear = member_enterprise(session).credit_code, member_enterprise(session).credit_code
    items = [
        skd(ok, "B-1"),
        skd(LVYUAN, "B-2"),  # SKD-E1, SKD-F4
        skd(dear, "B-3", annual_rate_bp=351),  # above LPR + 50 bp
        {"program": "SKD", "contract_no": "B-4", "principal": "12.345"},  # malformed
        skd("91320100MA1ZZZZZZX", "B-5"),  # unknown enterprise
        skd(ZHIXIN, "B-1"),  # the contract number of item 0 (409 for the item)
    ]
    h = {**auth("bank_jsb"), "Idempotency-Key": "batch-r"}
    first = client.post(f"{URL}/batch", headers=h, json={"items": items})
    assert first.status_code == 200, first.text
    results = first.json()["results"]
    assert [x["status"] for x in results] == ["accepted"] + ["refused"] * 5
    kept = rows(session)
    assert [r.contract_no for r in kept] == ["B-2", "B-3"]
    assert kept[0].rules == sorted({e["rule"] for e in results[1]["errors"]})
    assert kept[1].codes == [e["code"] for e in results[2]["errors"]]
    loans = books(session)
    again = client.post(f"{URL}/batch", headers=h, json={"items": items})
    assert again.headers["idempotent-replayed"] == "true"
    assert len(rows(session)) == 2 and books(session) == loans


def test_SKD_F6_a_filing_refused_at_commit_keeps_its_refusal(
    client: TestClient, auth, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """The quota is counted again at commit (SKD-F6); when it no longer fits, the single
    filing and every batch item counted in it are refused and kept (SKD-A1) — an XB item
    of the same batch, rolled back with it but not refused by a rule, is not."""
    monkeypatch.setattr("app.loans.repository.add_to_quota", lambda *_: False)
    before = books(session)
    h = auth("bank_jsb")
    single = client.post(URL, headers=h, json=skd(member_enterprise(session).credit_code, "Q-1"))
    assert single.status_code == 422 and single.json()["code"] == "annual_quota_exceeded"
    xb = {
        **skd(member_enterprise(session, region="320706").credit_code, "Q-4"),
        "program": "XB",
        "annual_rate_bp": 380,
    }
    items = [skd(member_enterprise(session).credit_code, "Q-2"), skd(LVYUAN, "Q-3"), xb]
    batch = client.post(f"{URL}/batch", headers=h, json={"items": items})
    assert batch.status_code == 422 and batch.json()["code"] == "annual_quota_exceeded"
    assert books(session) == before
    kept = {r.contract_no: r.rules for r in rows(session)}
    assert kept.keys() == {"Q-1", "Q-2", "Q-3"}
    assert kept["Q-1"] == kept["Q-2"] == ["SKD-F6"] and "SKD-E1" in kept["Q-3"]


def test_SKD_A1_refusals_are_listed_in_the_callers_scope(
    client: TestClient, auth, session: Session
) -> None:  # type: ignore[no-untyped-def]
    assert client.post(URL, headers=auth("bank_jsb"), json=skd(LVYUAN, "S-1")).status_code == 422
    nanjing = member_enterprise(session, region="320100").credit_code
    assert (
        client.post(URL, headers=auth("bank_icbc"), json=skd(nanjing, "S-2", annual_rate_bp=399))
    ).status_code == 422
    # XB-E1: a 南京 enterprise is outside the contributing districts
    xb = {**skd(ZHIXIN, "S-3"), "program": "XB", "annual_rate_bp": 380}
    assert client.post(URL, headers=auth("bank_lyg"), json=xb).status_code == 422

    def listed(user: str, query: str = "") -> list[str]:
        r = client.get(f"{URL}/refusals{query}", headers=auth(user))
        assert r.status_code == 200, r.text
        return sorted(x["contract_no"] for x in r.json()["items"])

    assert listed("regulator") == ["S-1", "S-2", "S-3"]
    assert listed("bank_jsb") == ["S-1"] and listed("bank_jsb", "?bank_code=ICBC_JS") == []
    assert listed("bank_lyg") == ["S-3"]
    assert listed("fund_xb") == ["S-3"] and listed("fund_nanjing") == ["S-1", "S-2"]
    assert listed("city_suzhou") == ["S-1"]  # 苏州绿源 is in 苏州
    assert listed("regulator", "?program=SKD&year=2026") == ["S-1", "S-2"]
    assert listed("regulator", "?year=2025") == []
    item = client.get(f"{URL}/refusals?bank_code=LYG_RCB", headers=auth("province")).json()
    (one,) = item["items"]
    assert one["rules"] == ["XB-E1"] and one["principal"] == "1000000.00"
    assert one["program"] == "XB" and one["business_date"] == "2026-03-31"
