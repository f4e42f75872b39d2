"""Drive XB loans and claims through the HTTP API (XB-F2, XB-C1, XB-C2)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from tests.claims_helpers import PDF, Api
from tests.factories import xb_enterprise

POOL = "XB_POOL"
GUARANTOR = "连云港信用融资担保有限公司"
# Loans disbursed 2025-06-27 and due 2025-12-27 are 45 days past due on 2026-02-10.
DISBURSED, DUE, CLAIM_DAY = "2025-06-27", "2025-12-27", "2026-02-10"


BANK = "bank_xbt"


def consent(dated_on: str, reference: str = "连信担确〔2025〕001号") -> dict[str, str]:
    """The guarantor's consent letter (同意担保确认函) a guaranteed XB loan is filed with."""
    return {"reference": reference, "dated_on": dated_on}


def xb_loan(api: Api, session: Session, bank: str, principal: str, **kw: Any) -> int:
    guaranteed = kw.pop("guaranteed", False)
    disbursed = kw.pop("disbursed", DISBURSED)
    extra: dict[str, Any] = (
        {
            "security": "guaranteed",
            "guarantor": GUARANTOR,
            "rate": 330,
            "guarantor_consent": consent(disbursed),  # XB-F2
        }
        if guaranteed
        else {}
    )
    return int(
        api.file_loan(
            bank,
            xb_enterprise(session).credit_code,
            principal,
            disbursed,
            kw.pop("maturity", DUE),
            program="XB",
            **({"rate": 380} | extra | kw),
        )
    )


def xb_claim(api: Api, bank: str, loan: int, day: str = CLAIM_DAY, expect: int = 201) -> Any:
    return api.call(
        day,
        bank,
        "POST",
        "/claims",
        expect,
        json={
            "loan_id": loan,
            "lawsuit_case_no": "(2026)苏0706民初123号",
            "lawsuit_accepted_on": "2026-01-20",
        },
    )


def documents(api: Api, bank: str, claim_id: int, day: str = CLAIM_DAY) -> None:
    for kind in ("application", "collection_plan", "due_diligence"):
        api.upload(
            bank,
            claim_id,
            day,
            data={"kind": kind},
            files={"file": (f"{kind}.pdf", PDF, "application/pdf")},
        )


def review(api: Api, claim_id: int, day: str, expect: int = 200, **body: Any) -> Any:
    body = {"decision": "approve", "opinion": "经审查，合作银行已尽职。"} | body
    return api.call(day, "fund_xb", "POST", f"/claims/{claim_id}/manager-review", expect, json=body)


def decide(api: Api, claim_id: int, day: str, expect: int = 200, **body: Any) -> Any:
    body = {"decision": "approve", "comment": "同意补偿"} | body
    return api.call(
        day, "committee", "POST", f"/claims/{claim_id}/committee-decision", expect, json=body
    )


def to_approval(api: Api, bank: str, loan: int, day: str = "2026-02-12") -> Any:
    c = xb_claim(api, bank, loan)
    documents(api, bank, c["id"])
    review(api, c["id"], day)
    return decide(api, c["id"], day)


def base_loans(api: Api, session: Session, bank: str, count: int, principal: str) -> None:
    """Performing loans that make up the bank's principal at the 2025-12-31 quarter end."""
    for _ in range(count):
        xb_loan(api, session, bank, principal, maturity="2027-06-27")
