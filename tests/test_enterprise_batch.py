"""POST /enterprises/batch and `ledger import-enterprises` (SPEC §2 reference data): every
item is checked like POST /enterprises (GB 32100-2015 check digit, fields, region) with
every failure listed; new enterprises are created together, recorded ones are never
changed by a batch (`unchanged` when the facts agree, `enterprise_exists` otherwise);
idempotent as a whole (SPEC L-4)."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app import cli
from app.models import Enterprise, IdempotencyRecord
from app.reference.enterprise_csv import FIELDS
from tests.fixtures.factories import xb_enterprise
from tests.fixtures.seed import HAIZHOU, credit_code

URL = "/api/v1/enterprises/batch"
ROOT = Path(__file__).resolve().parent.parent
_serial = itertools.count(1)


def _code(region: str = "320706") -> str:
    return credit_code(region[:6], f"MA1Q{next(_serial):05d}")


def _wrong_digit(code: str) -> str:
    return code[:-1] + ("0" if code[-1] != "0" else "1")


def _item(**over: Any) -> dict[str, Any]:
    return {
        "credit_code": _code(),
        "name": f"连云港批量{next(_serial)}号有限公司",
        "region_code": "320706",
        "registered_on": "2019-03-01",
        "prior_year_revenue": "8600000.00",
        "employees": 40,
        **over,
    }


def _count(session: Session, *codes: str) -> int:
    stmt = select(func.count()).select_from(Enterprise)
    if codes:
        stmt = stmt.where(Enterprise.credit_code.in_(codes))
    return int(session.scalar(stmt) or 0)


def _fields(result: dict[str, Any]) -> set[str]:
    return {".".join(str(p) for p in e["loc"][2:]) for e in result["errors"]}


def test_every_failed_field_of_an_item_is_listed(
    client: TestClient, auth, session: Session
) -> None:  # type: ignore[no-untyped-def]
    """SPEC §2: one item breaking the check digit, the money format (M-1), a range, a
    rating, the region and the shape is refused with each of them listed."""
    bad = _wrong_digit(_code())
    item = _item(
        credit_code=bad,
        prior_year_revenue="12.345",
        employees=-1,
        tax_credit_rating="E",
        region_code="329999",
        surprise=1,
    )
    before = _count(session)
    r = client.post(URL, headers=auth("bank_lyg"), json={"items": [item]})
    assert r.status_code == 200, r.text
    (result,) = r.json()["results"]
    assert (result["status"], result["code"], result["credit_code"]) == (
        "refused",
        "validation_error",
        bad,
    )
    assert _fields(result) == {
        "credit_code",
        "prior_year_revenue",
        "employees",
        "tax_credit_rating",
        "region_code",
        "surprise",
    }
    assert all(e["loc"][:2] == ["items", 0] for e in result["errors"])
    region = next(e for e in result["errors"] if e["loc"][2] == "region_code")
    assert region["code"] == "unknown_reference"
    assert _count(session) == before


def test_the_credit_code_check_digit_is_checked_in_the_batch(
    client: TestClient,
    auth,
    session: Session,  # type: ignore[no-untyped-def]
) -> None:
    """SPEC §2: 统一社会信用代码 with a GB 32100-2015 check digit; otherwise valid items."""
    good = _code()
    items = [_item(credit_code=_wrong_digit(good)), _item(credit_code=good.lower())]
    r = client.post(URL, headers=auth("bank_lyg"), json={"items": items})
    wrong, ok = r.json()["results"]
    assert wrong["status"] == "refused" and _fields(wrong) == {"credit_code"}
    assert "GB 32100-2015" in wrong["errors"][0]["msg"]
    assert (ok["status"], ok["credit_code"]) == ("created", good)
    assert _count(session, _wrong_digit(good)) == 0 and _count(session, good) == 1


def test_a_batch_mixing_good_and_bad_items(client: TestClient, auth, session: Session) -> None:  # type: ignore[no-untyped-def]
    good = [
        _item(),
        _item(prior_year_revenue="15300000.50", tax_credit_rating="B", env_credit_rating="blue"),
        _item(region_code="320700-KFQ", rd_staff_share_bp=1800, ip_count=14),
    ]
    bad = [_item(employees="many"), _item(region_code="320799")]
    items = [good[0], bad[0], good[1], bad[1], good[2]]
    before = _count(session)
    r = client.post(URL, headers=auth("bank_lyg"), json={"items": items})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["accepted"], body["created"], body["unchanged"], body["refused"]) == (3, 3, 0, 2)
    res = body["results"]
    assert [x["index"] for x in res] == [0, 1, 2, 3, 4]
    assert [x["status"] for x in res] == ["created", "refused", "created", "refused", "created"]
    assert (res[1]["code"], _fields(res[1])) == ("validation_error", {"employees"})
    assert (res[3]["code"], _fields(res[3])) == ("unknown_reference", {"region_code"})
    assert _count(session) == before + 3
    assert _count(session, *(x["credit_code"] for x in bad)) == 0  # refused: nothing written
    seen = client.get(
        f"/api/v1/enterprises/{good[1]['credit_code']}", headers=auth("bank_lyg")
    ).json()
    assert seen["id"] == res[2]["enterprise_id"]
    assert (seen["prior_year_revenue"], seen["tax_credit_rating"]) == ("15300000.50", "B")
    assert seen["dishonest_debtor"] is False  # defaults as POST /enterprises


def test_duplicates_within_a_batch_are_refused_per_item(
    client: TestClient,
    auth,
    session: Session,  # type: ignore[no-untyped-def]
) -> None:
    a, b, c = _item(), _item(), _item()
    items = [
        a,
        b,
        {**a, "credit_code": a["credit_code"].lower(), "name": "另一个名称有限公司"},
        a,
        {**c, "employees": -5},  # refused on its own …
        c,  # … and its code is still taken: the later occurrence is a duplicate
    ]
    r = client.post(URL, headers=auth("admin"), json={"items": items})
    res = r.json()["results"]
    assert [x["status"] for x in res] == [
        "created",
        "created",
        "refused",
        "refused",
        "refused",
        "refused",
    ]
    for dup in (res[2], res[3]):
        assert (dup["code"], _fields(dup)) == ("duplicate_in_batch", {"credit_code"})
        assert "item 0" in dup["errors"][0]["msg"] and dup["credit_code"] == a["credit_code"]
    assert res[4]["code"] == "validation_error" and res[5]["code"] == "duplicate_in_batch"
    assert _count(session, a["credit_code"]) == 1 and _count(session, c["credit_code"]) == 0
    name = session.scalar(select(Enterprise.name).where(Enterprise.credit_code == a["credit_code"]))
    assert name == a["name"]


def test_a_recorded_enterprise_is_unchanged_or_refused_never_updated(
    client: TestClient,
    auth,
    session: Session,  # type: ignore[no-untyped-def]
) -> None:
    code = HAIZHOU  # a seeded enterprise with R&D facts
    recorded = client.get(f"/api/v1/enterprises/{code}", headers=auth("bank_lyg")).json()
    full = {k: v for k, v in recorded.items() if k in FIELDS}
    short = {k: recorded[k] for k in ("credit_code", "name", "region_code", "registered_on")}
    short |= {"prior_year_revenue": recorded["prior_year_revenue"], "employees": 35}
    assert short["employees"] == recorded["employees"]
    other = {**full, "name": recorded["name"] + "（新）", "employees": recorded["employees"] + 1}
    r = client.post(URL, headers=auth("bank_lyg"), json={"items": [full, short, other]})
    assert r.status_code == 200, r.text
    body = r.json()
    res = body["results"]
    assert (body["accepted"], body["unchanged"], body["created"], body["refused"]) == (1, 1, 0, 2)
    assert (res[0]["status"], res[0]["enterprise_id"]) == ("unchanged", recorded["id"])
    # the second one repeats the code too: a duplicate, even though its facts agree
    assert res[1]["code"] == "duplicate_in_batch"
    assert res[2]["code"] == "duplicate_in_batch"
    again = client.post(URL, headers=auth("bank_lyg"), json={"items": [other]}).json()
    (refused,) = again["results"]
    assert (refused["status"], refused["code"]) == ("refused", "enterprise_exists")
    assert _fields(refused) == {"name", "employees"}
    assert {e["code"] for e in refused["errors"]} == {"enterprise_exists"}
    # fields left out are not compared: the R&D shares recorded are not contradicted
    partial = client.post(URL, headers=auth("bank_lyg"), json={"items": [short]}).json()
    assert partial["results"][0]["status"] == "unchanged"
    after = client.get(f"/api/v1/enterprises/{code}", headers=auth("bank_lyg")).json()
    assert after == recorded


def test_a_bank_cannot_clear_an_enterprise_risk_flag(
    client: TestClient,
    auth,
    session: Session,  # type: ignore[no-untyped-def]
) -> None:
    """SPEC §2 risk flags (失信被执行人, tax rating D) are kept as recorded: a batch that
    says otherwise is refused, for a bank and for an admin alike (PATCH is the way)."""
    flagged = xb_enterprise(session, dishonest_debtor=True, tax_credit_rating="D")
    url = f"/api/v1/enterprises/{flagged.credit_code}"
    recorded = client.get(url, headers=auth("bank_lyg")).json()
    cleared = {k: v for k, v in recorded.items() if k in FIELDS}
    cleared |= {"dishonest_debtor": False, "tax_credit_rating": None}
    for user in ("bank_lyg", "admin"):
        r = client.post(URL, headers=auth(user), json={"items": [cleared]})
        (result,) = r.json()["results"]
        assert (result["status"], result["code"]) == ("refused", "enterprise_exists"), user
        assert _fields(result) == {"dishonest_debtor", "tax_credit_rating"}
    after = client.get(url, headers=auth("bank_lyg")).json()
    assert (after["dishonest_debtor"], after["tax_credit_rating"]) == (True, "D")
    assert after["updated_at"] == recorded["updated_at"]


def test_the_batch_is_idempotent_as_a_whole(client: TestClient, auth, session: Session) -> None:  # type: ignore[no-untyped-def]
    """SPEC L-4: a replay returns the first answer; the key with another body → 409."""
    items = [_item(), _item(employees=-1)]
    h = {**auth("bank_lyg"), "Idempotency-Key": "enterprise-batch-1"}
    first = client.post(URL, headers=h, json={"items": items})
    assert first.status_code == 200 and first.json()["created"] == 1
    count = _count(session)
    again = client.post(URL, headers=h, json={"items": items})
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert _count(session) == count
    other = client.post(URL, headers=h, json={"items": items[:1]})
    assert other.status_code == 409
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["code"] == "idempotency_key_reused"
    # without the key, the re-sent file finds its enterprise recorded and changes nothing
    resent = client.post(URL, headers=auth("bank_lyg"), json={"items": items}).json()
    assert [x["status"] for x in resent["results"]] == ["unchanged", "refused"]
    assert resent["results"][0]["enterprise_id"] == first.json()["results"][0]["enterprise_id"]
    assert _count(session) == count


def test_the_10000_item_limit_and_whole_batch_refusals_write_nothing(
    client: TestClient,
    auth,
    session: Session,  # type: ignore[no-untyped-def]
) -> None:
    good = _item()
    before = _count(session)
    records = int(session.scalar(select(func.count()).select_from(IdempotencyRecord)) or 0)
    h = auth("bank_lyg")
    for n, body in enumerate(
        [
            {"items": []},
            {"items": [{}] * 10_001},
            {"items": [good, "not an object"]},
            {"items": [good], "unexpected": 1},
        ]
    ):
        r = client.post(URL, headers={**h, "Idempotency-Key": f"whole-{n}"}, json=body)
        assert r.status_code == 422, (n, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "validation_error" and r.json()["errors"]
    assert _count(session) == before  # the valid item of a refused batch was not written
    stored = int(session.scalar(select(func.count()).select_from(IdempotencyRecord)) or 0)
    assert stored == records
    at_limit = client.post(URL, headers=h, json={"items": [{}] * 10_000})
    assert at_limit.status_code == 200
    body = at_limit.json()
    assert (body["refused"], len(body["results"])) == (10_000, 10_000)
    assert _count(session) == before


def test_a_credit_code_registered_meanwhile_is_a_conflict_not_a_500(
    client: TestClient,
    auth,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    """Another request registering the same credit code between this batch's lookup and
    its insert (simulated: the lookup finds nothing) → 409 problem+json, nothing written."""
    from app.reference import repository

    recorded = HAIZHOU
    monkeypatch.setattr(repository, "enterprise_rows_by_codes", lambda *_: {})
    fresh = _item()
    before = _count(session)
    r = client.post(
        URL, headers=auth("bank_lyg"), json={"items": [fresh, _item(credit_code=recorded)]}
    )
    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "integrity_conflict"
    assert _count(session) == before


def test_who_may_send_a_batch(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    """API.md: admin and bank."""
    for user in ("province", "regulator", "committee"):
        r = client.post(URL, headers=auth(user), json={"items": [_item()]})
        assert r.status_code == 403, user
    assert client.post(URL, json={"items": [_item()]}).status_code == 401
    for user in ("admin", "bank_jsb"):
        r = client.post(URL, headers=auth(user), json={"items": [_item()]})
        assert r.json()["created"] == 1, user


def test_batch_and_single_registrations_decide_alike(client: TestClient, auth) -> None:  # type: ignore[no-untyped-def]
    """Each item gets the answer POST /enterprises gives it (same failed fields)."""

    def scenario() -> list[dict[str, Any]]:
        return [
            _item(),
            _item(credit_code=_wrong_digit(_code())),
            _item(credit_code=_code()[:17]),
            _item(prior_year_revenue="-1.00"),
            _item(prior_year_revenue=8600000),
            _item(rd_staff_share_bp=10001, env_credit_rating="purple"),
            _item(region_code="320799"),
            _item(registered_on="2019-02-30"),
            _item(name=" "),
        ]

    single = []
    for item in scenario():
        r = client.post("/api/v1/enterprises", headers=auth("admin"), json=item)
        locs = {".".join(str(p) for p in e["loc"][1:]) for e in r.json().get("errors", [])}
        single.append((r.status_code == 201, locs))
    r = client.post(URL, headers=auth("admin"), json={"items": scenario()})
    batch = [(x["status"] == "created", _fields(x)) for x in r.json()["results"]]
    assert batch == single
    assert [ok for ok, _ in batch] == [True] + [False] * 8


# --- ledger import-enterprises ---------------------------------------------------------
def _write_csv(path: Path, rows: list[dict[str, Any]], header: list[str] | None = None) -> Path:
    columns = header or list(FIELDS)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else str(row.get(c)) for c in columns])
    return path


def _run(
    monkeypatch: pytest.MonkeyPatch, session_factory: sessionmaker[Session], *args: str
) -> int:
    monkeypatch.setattr(cli, "_session", session_factory)
    with pytest.raises(SystemExit) as info:
        cli.main(["import-enterprises", *args])
    return int(info.value.code or 0)


def test_cli_import_writes_a_report_and_commits_the_accepted_rows(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    session_factory: sessionmaker[Session],
    session: Session,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good, other = _item(), _item(dishonest_debtor="true", tax_credit_rating="C")
    bad = _item(credit_code=_wrong_digit(_code()), prior_year_revenue="12.345")
    path = _write_csv(tmp_path / "book.csv", [good, bad, other, {**good, "name": "同码企业"}])
    report = tmp_path / "errors.csv"
    code = _run(
        monkeypatch, session_factory, str(path), "--bank", "LYG_RCB", "--report", str(report)
    )
    assert code == 1  # rows were refused
    assert "4 rows; created 2, unchanged 0, refused 2" in capsys.readouterr().out
    with report.open(encoding="utf-8-sig", newline="") as fh:
        lines = list(csv.reader(fh))
    assert lines[0] == ["row", "credit_code", "field", "code", "message"]
    assert {(r[0], r[1], r[2], r[3]) for r in lines[1:]} == {
        ("3", bad["credit_code"], "credit_code", "validation_error"),
        ("3", bad["credit_code"], "prior_year_revenue", "validation_error"),
        ("5", good["credit_code"], "credit_code", "duplicate_in_batch"),
    }
    assert lines[-1][4] == "credit code already given in row 2"
    assert _count(session, good["credit_code"], other["credit_code"]) == 2  # committed
    assert _count(session, bad["credit_code"]) == 0
    flagged = session.scalars(
        select(Enterprise).where(Enterprise.credit_code == other["credit_code"])
    ).one()
    assert (flagged.dishonest_debtor, flagged.tax_credit_rating) == (True, "C")
    # the same file again: the accepted rows come back unchanged, the bad ones still refused
    assert _run(monkeypatch, session_factory, str(path)) == 1
    captured = capsys.readouterr()
    assert "created 0, unchanged 2, refused 2" in captured.out
    assert "row 3" in captured.err and "GB 32100-2015" in captured.err


def test_cli_refuses_an_unusable_file_and_writes_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    session_factory: sessionmaker[Session],
    session: Session,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = _item()
    columns = [*FIELDS, "bank_note"]
    unknown_column = _write_csv(tmp_path / "a.csv", [good], header=columns)
    no_revenue = _write_csv(
        tmp_path / "b.csv", [good], header=[f for f in FIELDS if f != "prior_year_revenue"]
    )
    fine = _write_csv(tmp_path / "c.csv", [good])
    assert _run(monkeypatch, session_factory, str(unknown_column)) == 2
    assert "bank_note" in capsys.readouterr().err
    assert _run(monkeypatch, session_factory, str(no_revenue)) == 2
    assert "prior_year_revenue" in capsys.readouterr().err
    assert _run(monkeypatch, session_factory, str(fine), "--bank", "NO_SUCH_BANK") == 2
    assert _count(session, good["credit_code"]) == 0


def test_the_example_csv_imports_cleanly(
    monkeypatch: pytest.MonkeyPatch,
    session_factory: sessionmaker[Session],
    session: Session,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = ROOT / "docs" / "examples" / "enterprises.csv"
    before = _count(session)
    assert _run(monkeypatch, session_factory, str(path)) == 0
    assert "refused 0" in capsys.readouterr().out
    assert _count(session) > before
