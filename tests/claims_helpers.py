"""Drive SKD loans and claims through the HTTP API on chosen business dates (M-5)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.kit.clock import Clock
from app.main import create_app

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
_contracts = itertools.count(1)
Headers = Callable[[str], dict[str, str]]


class Api:
    """One TestClient per business date, and the calls a claim needs."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        session_factory: sessionmaker[Session],
        auth: Headers,
        stack: ExitStack,
    ) -> None:
        self.settings, self.engine, self.factory = settings, engine, session_factory
        self.auth, self.stack = auth, stack
        self.clients: dict[str, TestClient] = {}

    def on(self, day: str) -> TestClient:
        if day not in self.clients:
            app = create_app(
                self.settings,
                engine=self.engine,
                session_factory=self.factory,
                clock=Clock(date.fromisoformat(day)),
            )
            self.clients[day] = self.stack.enter_context(TestClient(app))
        return self.clients[day]

    def call(self, day: str, user: str, method: str, url: str, expect: int = 200, **kw: Any) -> Any:
        r = self.on(day).request(method, "/api/v1" + url, headers=self.auth(user), **kw)
        assert r.status_code == expect, r.text
        return r.json()

    # --- loans -----------------------------------------------------------------------
    def file_loan(
        self,
        bank: str,
        enterprise: str,
        principal: str,
        disbursed: str,
        maturity: str,
        *,
        security: str = "credit",
        guarantor: str | None = None,
        rate: int = 340,
        program: str = "SKD",
        filed_on: str | None = None,
        expect: int = 201,
        **extra: Any,
    ) -> Any:
        body: dict[str, Any] = {
            "program": program,
            "enterprise_credit_code": enterprise,
            "contract_no": f"CL-{next(_contracts)}",
            "principal": principal,
            "annual_rate_bp": rate,
            "disbursed_on": disbursed,
            "maturity_on": maturity,
            "security": security,
            "controller_guarantee": True,
        }
        if guarantor:
            body["guarantor"] = guarantor
        out = self.call(filed_on or disbursed, bank, "POST", "/loans", expect, json=body | extra)
        return int(out["id"]) if expect == 201 else out

    def repay(self, bank: str, loan_id: int, day: str, principal: str) -> None:
        self.call(
            day,
            bank,
            "POST",
            f"/loans/{loan_id}/repayments",
            201,
            json={"paid_on": day, "principal": principal},
        )

    # --- claims ----------------------------------------------------------------------
    def claim(self, bank: str, loan_id: int, day: str, expect: int = 201) -> Any:
        return self.call(day, bank, "POST", "/claims", expect, json={"loan_id": loan_id})

    def upload(self, bank: str, claim_id: int, day: str, expect: int = 201, **kw: Any) -> Any:
        files = kw.pop("files", {"file": ("申请书.pdf", PDF, "application/pdf")})
        data = kw.pop("data", {"kind": "application"})
        return self.call(
            day, bank, "POST", f"/claims/{claim_id}/documents", expect, files=files, data=data
        )

    def review(
        self,
        stage: str,
        user: str,
        claim_id: int,
        day: str,
        decision: str = "approve",
        expect: int = 200,
        **extra: Any,
    ) -> Any:
        body = {"decision": decision, "comment": extra.pop("comment", "材料齐全"), **extra}
        return self.call(day, user, "POST", f"/claims/{claim_id}/{stage}", expect, json=body)

    def pay(self, stage: str, user: str, claim_id: int, day: str, expect: int = 200) -> Any:
        return self.call(
            day, user, "POST", f"/claims/{claim_id}/{stage}", expect, json={"paid_on": day}
        )

    def through_reviews(
        self, bank: str, city: str, claim_id: int, filed: str, approved: str
    ) -> Any:
        self.upload(bank, claim_id, filed)
        self.review("city-review", city, claim_id, filed)
        return self.review("province-review", "province", claim_id, approved)


def api_fixture(
    settings: Settings, engine: Engine, session_factory: sessionmaker[Session], auth: Headers
) -> Iterator[Api]:
    with ExitStack() as stack:
        yield Api(settings, engine, session_factory, auth, stack)
