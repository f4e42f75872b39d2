"""Pure ledger rules, no database: the chart of accounts, leg validation (L-1) and the
canonical content hash of an entry (tamper evidence)."""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class AccountKind:
    kind: str
    type: str  # asset / liability / equity / income / expense / memo
    normal_side: str  # debit / credit
    beancount: str  # Beancount root and leaf, e.g. "Assets:{fund}:Cash"
    name_zh: str
    counterparty: str | None  # what the counterparty is, or None for a single account


# The chart of accounts of every fund's book (ARCHITECTURE "Ledger notes").
CHART: dict[str, AccountKind] = {
    k.kind: k
    for k in (
        AccountKind("cash", "asset", "debit", "Assets:{fund}:Cash", "专户资金", None),
        AccountKind(
            "contributed_capital",
            "equity",
            "credit",
            "Equity:{fund}:Capital",
            "实收出资",
            "contributor",
        ),
        AccountKind(
            "compensation_expense",
            "expense",
            "debit",
            "Expenses:{fund}:Compensation",
            "代偿支出",
            "bank",
        ),
        AccountKind(
            "recovery_income",
            "income",
            "credit",
            "Income:{fund}:Recoveries",
            "追偿返还收入",
            "bank",
        ),
        AccountKind(
            "payable_bank",
            "liability",
            "credit",
            "Liabilities:{fund}:PayableBank",
            "应付银行代偿款",
            "bank",
        ),
        AccountKind(
            "receivable_bank",
            "asset",
            "debit",
            "Assets:{fund}:ReceivableBank",
            "应收银行返还款",
            "bank",
        ),
        AccountKind(
            "due_to_fund",
            "liability",
            "credit",
            "Liabilities:{fund}:DueToFund",
            "应付其他资金",
            "fund",
        ),
        AccountKind(
            "due_from_fund", "asset", "debit", "Assets:{fund}:DueFromFund", "应收其他资金", "fund"
        ),
        AccountKind(
            "exposure_memo",
            "memo",
            "debit",
            "Assets:{fund}:Memo:Exposure",
            "担保责任（备查）",
            "bank",
        ),
        AccountKind(
            "guarantor_obligation_memo",
            "memo",
            "debit",
            "Assets:{fund}:Memo:GuarantorObligation",
            "担保机构代偿责任（备查）",
            "bank",
        ),
        AccountKind(
            "guarantor_obligation_contra",
            "memo",
            "credit",
            "Liabilities:{fund}:Memo:GuarantorObligationContra",
            "担保机构代偿责任对应（备查）",
            "bank",
        ),
        AccountKind(
            "compensation_refunds",
            "income",
            "credit",
            "Income:{fund}:CompensationRefunds",
            "代偿退回",
            "bank",
        ),
        AccountKind(
            "exposure_contra",
            "memo",
            "credit",
            "Liabilities:{fund}:Memo:ExposureContra",
            "担保责任对应（备查）",
            "bank",
        ),
    )
}


class LedgerRuleError(ValueError):
    """A posting that breaks L-1; `problems` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class LegSpec:
    """One leg to post: the account by (fund, kind, counterparty) and signed fen; the loan
    it concerns, when it concerns one (a guarantee exposure's legs name their loan, so
    that one entry can carry a whole batch's loans, a leg pair each)."""

    fund_code: str
    kind: str
    amount_fen: int
    counterparty: str | None = None
    loan_id: int | None = None

    @property
    def account_code(self) -> str:
        return account_code(self.fund_code, self.kind, self.counterparty)

    @property
    def hashed(self) -> HashedLeg:
        return hashed_leg(self.account_code, self.amount_fen, self.loan_id)


HashedLeg = tuple[str, int] | tuple[str, int, int]


def hashed_leg(code: str, amount_fen: int, loan_id: int | None) -> HashedLeg:
    """A leg as its entry's content hash sees it: (account code, fen), with the loan's id
    third when it names one (a leg naming no loan hashes as legs always have)."""
    return (code, amount_fen) if loan_id is None else (code, amount_fen, loan_id)


def debit(
    fund_code: str,
    kind: str,
    amount_fen: int,
    counterparty: str | None = None,
    *,
    loan_id: int | None = None,
) -> LegSpec:
    return LegSpec(fund_code, kind, amount_fen, counterparty, loan_id)


def credit(
    fund_code: str,
    kind: str,
    amount_fen: int,
    counterparty: str | None = None,
    *,
    loan_id: int | None = None,
) -> LegSpec:
    return LegSpec(fund_code, kind, -amount_fen, counterparty, loan_id)


def account_code(fund_code: str, kind: str, counterparty: str | None) -> str:
    return f"{fund_code}:{kind}" + (f":{counterparty}" if counterparty else "")


def validate_legs(legs: Sequence[LegSpec]) -> None:
    """L-1: at least two non-zero integer legs summing to zero in each fund's book; the
    legs naming a loan also sum to zero in each book on their own (an entry carrying many
    loans is a balanced pair of legs per loan; docs/journal.md)."""
    problems: list[str] = []
    if len(legs) < 2:
        problems.append("an entry needs at least two legs")
    per_book: dict[str, int] = defaultdict(int)
    per_loan: dict[tuple[str, int], int] = defaultdict(int)
    for i, leg in enumerate(legs):
        if not isinstance(leg.amount_fen, int) or isinstance(leg.amount_fen, bool):
            problems.append(f"leg {i}: amount must be integer fen")
            continue
        if leg.amount_fen == 0:
            problems.append(f"leg {i}: amount must not be zero")
        spec = CHART.get(leg.kind)
        if spec is None:
            problems.append(f"leg {i}: unknown account kind {leg.kind!r}")
        elif (spec.counterparty is None) != (leg.counterparty is None):
            need = "needs" if spec.counterparty else "takes no"
            problems.append(f"leg {i}: account kind {leg.kind} {need} a counterparty")
        per_book[leg.fund_code] += leg.amount_fen
        if leg.loan_id is not None:
            per_loan[(leg.fund_code, leg.loan_id)] += leg.amount_fen
    for fund, total in sorted(per_book.items()):
        if total != 0:
            problems.append(f"legs in book {fund} sum to {total} fen, not zero")
    for (fund, loan), total in sorted(per_loan.items()):
        if total != 0:
            problems.append(f"legs of loan {loan} in book {fund} sum to {total} fen, not zero")
    if problems:
        raise LedgerRuleError(problems)


def negate(legs: Iterable[LegSpec]) -> list[LegSpec]:
    return [LegSpec(g.fund_code, g.kind, -g.amount_fen, g.counterparty, g.loan_id) for g in legs]


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(
    *,
    prev_hash: str,
    seq: int,
    event_type: str,
    event_id: str,
    idempotency_key: str,
    business_date: date,
    recorded_at: datetime,
    description: str,
    reverses_entry_id: int | None,
    legs: Iterable[HashedLeg],
) -> str:
    """SHA-256 over the predecessor's hash and a canonical form of the entry's content.
    A leg is (account code, fen), with its loan's id third when it names one."""
    content = {
        "seq": seq,
        "event_type": event_type,
        "event_id": event_id,
        "idempotency_key": idempotency_key,
        "business_date": business_date.isoformat(),
        "recorded_at": _timestamp(recorded_at),
        "description": description,
        "reverses": reverses_entry_id,
        "legs": sorted(legs),
    }
    payload = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + payload).encode()).hexdigest()


_READABLE = re.compile(r"[A-Z0-9][A-Z0-9_]*")


def bean_component(text: str) -> str:
    """A Beancount account component (starts with a capital or a digit; letters, digits,
    '-'), different for every different code, so that no two counterparties or books
    share an account in the export:

    * a code of capitals, digits and '_' starting with a capital or a digit (`XB_POOL`,
      `LYG_RCB`) reads as itself with '-' for '_' (`XB-POOL`): such names hold no
      lower-case letter;
    * any other code (`LYG-RCB`, `320700-XWXQ`, `abc`) is `Xx` followed by the code with
      every character but capitals and digits written `x` + its UTF-8 bytes in lower-case
      hex (`XxLYGx2dRCB`): such names always hold a lower-case `x`, and each escape
      starts with one, so they never meet a name of the first kind, nor each other."""
    if _READABLE.fullmatch(text):
        return text.replace("_", "-")
    escaped = "".join(
        ch
        if ch.isascii() and (ch.isupper() or ch.isdigit())
        else "".join(f"x{b:02x}" for b in ch.encode("utf-8"))
        for ch in text
    )
    return "Xx" + escaped


def beancount_account(fund_code: str, kind: str, counterparty: str | None) -> str:
    name = CHART[kind].beancount.format(fund=bean_component(fund_code))
    return name + (f":{bean_component(counterparty)}" if counterparty else "")
