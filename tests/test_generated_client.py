"""A generated client can trust the contract (issue part 2): `openapi-python-client`
generates a Python client from the COMMITTED `openapi/openapi.json` with the settings of
`openapi/client-config.yaml`, without a warning, and a partner bank drives a running
server with it — log in, file a loan, a refusal parsed as a Problem with its rule IDs, a
replay with `Idempotency-Key`, a compensation claim, reading the claim back.

The server is `make run`'s (tests/fixtures/live_server.py): uvicorn in a subprocess on
the data `ledger seed-demo` writes, its log kept in `test-artifacts/client/server.log`;
an answer of 500 fails the test with the log's tail. The client raises on any status
its operation does not document (`raise_on_unexpected_status`), so every answer below
is one the document promised.

Runs once (it takes no database backend: what it checks is the document and the wire).
Skipped, saying why, when openapi-python-client is not installed."""

from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.fixtures.live_server import ARTIFACTS, ROOT, LiveServer, live_server, seeded_data

# On one xdist worker with tests/test_swagger_browser.py: the seeded data is made once.
pytestmark = pytest.mark.xdist_group("live_server")

DOCUMENT = ROOT / "openapi" / "openapi.json"
CONFIG = ROOT / "openapi" / "client-config.yaml"
PACKAGE = "ledger_client"  # package_name_override in the config
LOG = ARTIFACTS / "client" / "server.log"

# 苏州同创工业软件有限公司 (prior-year revenue 14,200,000: SKD1), in 苏州's SKD library; its
# earlier SKD loan with 建设银行 was repaid in full, so it may borrow again (SKD-F3).
TONGCHUANG = "91320500MA1XB0006M"


@dataclass
class Generated:
    path: Path
    output: str
    package: ModuleType
    operations: dict[str, ModuleType]  # operationId -> its generated module

    def op(self, operation_id: str) -> ModuleType:
        assert operation_id in self.operations, (
            f"the client has no operation {operation_id!r} (operationIds come from the "
            "document; see app/contract.py)"
        )
        return self.operations[operation_id]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generated]:
    """The client generated from the committed document, imported from a temp dir."""
    pytest.importorskip(
        "openapi_python_client",
        reason="openapi-python-client is not installed (pip install -e '.[dev]')",
    )
    out = tmp_path_factory.mktemp("generated-client")
    done = subprocess.run(
        [
            *(sys.executable, "-m", "openapi_python_client", "generate"),
            *("--path", str(DOCUMENT), "--config", str(CONFIG)),
            *("--meta", "none"),
        ],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"openapi-python-client failed:\n{output}"
    sys.path.insert(0, str(out))
    try:
        package = importlib.import_module(PACKAGE)
        api = importlib.import_module(f"{PACKAGE}.api")
        operations: dict[str, ModuleType] = {}
        for info in pkgutil.walk_packages(api.__path__, f"{PACKAGE}.api."):
            if not info.ispkg:
                name = info.name.rsplit(".", 1)[-1]
                assert name not in operations, f"two generated operations named {name}"
                operations[name] = importlib.import_module(info.name)
        yield Generated(out / PACKAGE, output, package, operations)
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = seeded_data(tmp_path_factory)
    with live_server(data, tmp_path_factory.mktemp("client-server"), LOG) as srv:
        yield srv


@dataclass
class Bank:
    """A partner bank's session through the generated client."""

    generated: Generated
    client: Any  # ledger_client.AuthenticatedClient

    def call(self, operation_id: str, **kwargs: Any) -> Any:
        """`sync_detailed` of the operation: the status, headers and parsed body."""
        return self.generated.op(operation_id).sync_detailed(client=self.client, **kwargs)

    def body(self, operation_id: str, payload: dict[str, Any]) -> Any:
        """The operation's request body model, from JSON as a bank's system holds it."""
        body_type = self.generated.op(operation_id).sync_detailed.__annotations__["body"]
        return body_type.from_dict(payload)


def _guard(server: LiveServer) -> Callable[[Any], None]:
    def on_response(response: Any) -> None:
        server.fail_on_server_error(
            response.request.method, str(response.request.url), response.status_code
        )

    return on_response


@pytest.fixture
def login(generated: Generated, server: LiveServer) -> Callable[[str], Bank]:
    """login(bank_code) → the bank user's session, logged in with the `login` operation
    and the password `ledger seed-demo` printed."""
    pkg = generated.package
    hooks = {"event_hooks": {"response": [_guard(server)]}}

    def log_in(bank_code: str) -> Bank:
        username = next(
            u
            for u, (role, scope) in server.data.users.items()
            if (role, scope) == ("bank", bank_code)
        )
        anonymous = pkg.Client(
            base_url=server.url, raise_on_unexpected_status=True, httpx_args=hooks
        )
        op = generated.op("login")
        form = op.sync_detailed.__annotations__["body"](username=username, password=server.password)
        token = op.sync(client=anonymous, body=form)
        assert isinstance(token, pkg.models.TokenOut), token
        client = pkg.AuthenticatedClient(
            base_url=server.url,
            token=token.access_token,
            raise_on_unexpected_status=True,
            httpx_args=hooks,
        )
        return Bank(generated, client)

    return log_in


def _filing(server: LiveServer, lpr_bp: int, **changes: Any) -> dict[str, Any]:
    """A valid SKD1 credit filing for 同创 by 江苏银行, disbursed on the business date."""
    today = server.data.today
    return {
        "program": "SKD",
        "enterprise_credit_code": TONGCHUANG,
        "contract_no": f"JSB-SKD-CLIENT-{uuid.uuid4().hex[:8].upper()}",
        "principal": "1000000.00",
        "annual_rate_bp": lpr_bp + 40,  # SKD1: at most LPR + 50 bp (SKD-P1)
        "disbursed_on": today.isoformat(),
        "maturity_on": (today + timedelta(days=360)).isoformat(),
        "security": "credit",
        "controller_guarantee": True,
        **changes,
    }


def _lpr(bank: Bank, server: LiveServer) -> int:
    lpr = bank.generated.op("lpr_in_force").sync(client=bank.client, on=server.data.today)
    assert isinstance(lpr, bank.generated.package.models.LprOut), lpr
    return int(lpr.rate_bp)


# --- the generated client ------------------------------------------------------------------
def test_the_client_generates_from_the_committed_document_without_warnings(
    generated: Generated,
) -> None:
    """No warning: every operation, body and response of the document made it into the
    client; the package has the config's name and functions named after operationIds."""
    noisy = [line for line in generated.output.splitlines() if re.search(r"warning", line, re.I)]
    assert noisy == [], "openapi-python-client warned:\n" + generated.output
    assert generated.path.is_dir() and (generated.path / "client.py").is_file()
    ops = generated.operations
    assert {"login", "file_loan", "list_loans", "file_claim", "get_claim", "city_review"} <= set(
        ops
    )
    automatic = sorted(name for name in ops if "_api_v1_" in name)
    assert automatic == [], f"FastAPI's automatic operation ids: {automatic}"
    # A body the generator could only type as a string but sends as bytes crashes the
    # client at run time (`str` has no `payload`): such a body's schema must say
    # `format: binary`.
    broken = sorted(
        name
        for name, module in ops.items()
        if re.search(
            r'isinstance\(body, str\):\s*\n\s*_kwargs\["content"\] = body\.payload',
            Path(str(module.__file__)).read_text(encoding="utf-8"),
        )
    )
    assert broken == [], f"binary bodies without `format: binary` in the document: {broken}"


# --- a partner bank drives the service -----------------------------------------------------
def test_bank_files_a_loan_refused_then_fixed_and_replayed(
    login: Callable[[str], Bank], server: LiveServer
) -> None:
    """江苏银行 files an SKD1 loan for 同创. First with a rate above SKD1's cap, a month
    after the disbursement: SKD-P1 and SKD-F2 at once, and the client returns the parsed
    Problem (not a crash) whose top-level `code` is the first failure's and whose
    `errors[]` list both with their rule IDs. Then the corrected filing with an
    `Idempotency-Key`; the same call again (a retry after a timeout) is answered with
    the same loan, marked `Idempotent-Replayed`."""
    bank = login("JSB")
    models = bank.generated.package.models
    lpr = _lpr(bank, server)
    late = server.data.today - timedelta(days=30)
    wrong = _filing(
        server,
        lpr,
        annual_rate_bp=lpr + 90,
        disbursed_on=late.isoformat(),
        maturity_on=(late + timedelta(days=360)).isoformat(),
    )
    answer = bank.call("file_loan", body=bank.body("file_loan", wrong))
    assert answer.status_code == 422, answer.content
    problem = answer.parsed
    assert isinstance(problem, models.Problem), problem
    assert answer.headers["content-type"].startswith("application/problem+json")
    rules = [(e.rule, e.code, list(e.loc)) for e in problem.errors]
    assert rules == [
        ("SKD-P1", "rate_above_cap", ["body", "annual_rate_bp"]),
        ("SKD-F2", "filing_deadline_passed", ["body", "disbursed_on"]),
    ]
    assert problem.code == "rate_above_cap", "the top-level code is the first failure's"
    assert problem.type_.endswith("/problems/rate_above_cap")
    assert problem.status == 422 and problem.request_id
    assert isinstance(problem.detail_zh, str) and problem.detail_zh

    # the corrected filing, under the same contract number (nothing was filed)
    key = f"client-test-{uuid.uuid4()}"
    body = bank.body("file_loan", _filing(server, lpr, contract_no=wrong["contract_no"]))
    first = bank.call("file_loan", body=body, idempotency_key=key)
    assert first.status_code == 201, first.content
    loan = first.parsed
    assert isinstance(loan, models.LoanView), loan
    assert (loan.program, loan.product, loan.status) == ("SKD", "SKD1", "active")
    assert loan.contract_no == wrong["contract_no"] and loan.principal == "1000000.00"
    assert "Idempotent-Replayed" not in first.headers

    again = bank.call("file_loan", body=body, idempotency_key=key)
    assert again.status_code == 201, again.content
    assert isinstance(again.parsed, models.LoanView)
    assert again.parsed.id == loan.id
    assert again.headers["Idempotent-Replayed"] == "true"

    read = bank.call("get_loan", loan_id=loan.id)
    assert read.status_code == 200, read.content
    assert (read.parsed.id, read.parsed.contract_no) == (loan.id, loan.contract_no)


def test_bank_claims_on_an_overdue_loan_and_reads_the_claim(
    login: Callable[[str], Bank], server: LiveServer
) -> None:
    """XB-C1: 连云港农商行 finds its loan ≥ 45 days past due; a claim without the court
    case is refused with both XB-C1 failures; with it the claim is filed and read back."""
    bank = login("LYG_RCB")
    models = bank.generated.package.models
    loans: list[Any] = []
    cursor: Any = None
    while True:
        page = bank.call("list_loans", limit=100, **({"cursor": cursor} if cursor else {}))
        assert page.status_code == 200 and isinstance(page.parsed, models.PageLoanView)
        loans += page.parsed.items
        cursor = page.parsed.next_cursor
        if not cursor:
            break
    overdue = [
        loan
        for loan in loans
        if loan.program == "XB" and loan.status == "active" and loan.compensable
        if loan.days_past_due >= 45
    ]
    assert overdue, "the demo has no XB loan of 连云港农商行 ≥ 45 days past due"
    loan = overdue[0]

    refused = bank.call("file_claim", body=bank.body("file_claim", {"loan_id": loan.id}))
    assert refused.status_code == 422, refused.content
    problem = refused.parsed
    assert isinstance(problem, models.Problem), problem
    assert [(e.rule, e.code, list(e.loc)) for e in problem.errors] == [
        ("XB-C1", "lawsuit_required", ["body", "lawsuit_case_no"]),
        ("XB-C1", "lawsuit_required", ["body", "lawsuit_accepted_on"]),
    ]
    assert problem.code == "lawsuit_required"

    accepted_on = server.data.today - timedelta(days=14)
    claim_body = {
        "loan_id": loan.id,
        "lawsuit_case_no": f"(2026)苏0706民初{loan.id}号",
        "lawsuit_accepted_on": accepted_on.isoformat(),
        "comment": "逾期超过45天，已起诉并获受理",
    }
    filed = bank.call("file_claim", body=bank.body("file_claim", claim_body))
    assert filed.status_code == 201, filed.content
    claim = filed.parsed
    assert isinstance(claim, models.ClaimOut), claim
    assert (claim.program, claim.loan_id, claim.status) == ("XB", loan.id, "submitted")

    read = bank.call("get_claim", claim_id=claim.id)
    assert read.status_code == 200, read.content
    again = read.parsed
    assert isinstance(again, models.ClaimOut)
    assert (again.id, again.loan_id, again.lawsuit_accepted_on) == (claim.id, loan.id, accepted_on)
    assert again.lawsuit_case_no == claim_body["lawsuit_case_no"]
    assert again.loss == loan.outstanding_principal
    assert [h.action for h in again.history] == ["submit"]
    assert again.next_step is not None and again.next_step.stage == "manager_review"
