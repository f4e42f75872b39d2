"""The annual report: SKD-A1's assessment per bank (volume, enterprises, average rate,
approval efficiency, NPL ratio, compliance with the refused filings by rule) and XB-Rep's
annual evaluation with a recommendation per bank (第二十二条: no base loan in the year →
terminate; EvaluationPolicy for the rest), on small books, figures to the fen."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.claims import service as claims
from app.claims.workflow import StepInput
from app.errors import Forbidden
from app.models import FilingRefusal
from app.programs.base import ProgramBase
from app.programs.xinbao.annual import Performance, recommend
from app.programs.xinbao.policy import EVALUATION
from app.reports.annual import AnnualFigures, BankYear, build_annual
from app.reports.document import ReportDocument
from tests.fixtures.factories import (
    NOW,
    principal,
    recovery,
    repayment,
    skd_claim,
    skd_loan,
    xb_claim,
    xb_loan,
)


def annual(session: Session, program: str, year: int, user: str = "regulator", **kw: Any) -> Any:
    return build_annual(
        session,
        program=program,
        year=year,
        principal=principal(session, user),
        cutoff_at=kw.pop("cutoff_at", datetime.now(UTC)),
        **kw,
    )


def by_bank(doc: ReportDocument, key: str) -> dict[str, dict[str, Any]]:
    return {str(r["bank_code"]): r for r in doc.section(key).rows}


def refusal(session: Session, bank: str, contract: str, rules: list[str], on: date) -> None:
    session.add(
        FilingRefusal(
            bank_code=bank,
            program="SKD",
            enterprise_credit_code="91320500MA1ZZZZZZ1",
            contract_no=contract,
            principal_fen=1_000_000_00,
            disbursed_on=on,
            rules=rules,
            codes=["x"] * len(rules),
            business_date=on,
            refused_by_id=principal(session, "bank_ccb").user_id,
        )
    )
    session.commit()


def test_SKD_A1_the_assessment_per_bank_to_the_fen(session: Session) -> None:
    """建设银行's 2026: four loans, two claims decided 2 and 5 days after filing, NPL
    1,400,000.00 of 4,000,000.00 at the year end, two refused filings; 江苏银行's one
    loan; the banks with an SKD agreement in the year all listed."""
    claimed = skd_loan(session, annual_rate_bp=300)  # 1,000,000.00, due 2026-06-02
    skd_loan(
        session,
        principal_yuan="2000000.00",
        annual_rate_bp=320,
        disbursed=date(2026, 3, 9),
        maturity=date(2026, 12, 9),
    )  # unpaid at maturity: 22 days past due on 12-31
    late = skd_loan(
        session,
        principal_yuan="400000.00",
        annual_rate_bp=345,
        disbursed=date(2026, 3, 16),
        maturity=date(2026, 12, 16),
        schedule=[
            {"due_on": "2026-08-20", "principal": "100000.00"},
            {"due_on": "2026-12-16", "principal": "300000.00"},
        ],
    )
    skd_loan(
        session, principal_yuan="600000.00", disbursed=date(2026, 9, 7), maturity=date(2027, 3, 7)
    )
    skd_loan(
        session,
        bank="bank_jsb",
        region="320100",
        principal_yuan="5000000.00",
        annual_rate_bp=345,
        disbursed=date(2026, 1, 12),
        maturity=date(2027, 1, 12),
    )
    skd_loan(  # 2025: not in 2026's volume
        session,
        bank="bank_jsb",
        region="320100",
        disbursed=date(2025, 3, 10),
        maturity=date(2026, 3, 10),
    )
    skd_claim(session, loan=claimed, status="paid")  # filed 09-01, approved 09-03
    rejected = skd_claim(session, loan=late, filed=date(2026, 11, 20))
    claims.act(
        session,
        claim_id=rejected.id,
        stage="city_review",
        step=StepInput(approve=False, comment="材料不实"),
        actor=principal(session, "city_suzhou"),
        today=date(2026, 11, 25),
        now=NOW,
    )
    session.commit()
    refusal(session, "CCB_JS", "R-1", ["SKD-E1", "SKD-F4"], date(2026, 4, 2))
    refusal(session, "CCB_JS", "R-2", ["SKD-F2"], date(2026, 5, 6))
    refusal(session, "CCB_JS", "R-0", ["SKD-F2"], date(2025, 12, 30))  # last year

    doc = annual(session, "SKD", 2026)
    assert (doc.kind, doc.period, doc.scope) == ("annual", "2026", "")
    banks = by_bank(doc, "assessment")
    assert sorted(banks) == ["BOC_JS", "CCB_JS", "ICBC_JS", "JSB"]
    ccb = banks["CCB_JS"]
    # Σ p × r ÷ Σ p = (1,000,000 × 300 + 2,000,000 × 320 + 400,000 × 345 + 600,000 × 340)
    # ÷ 4,000,000 = 1,282,000,000 ÷ 4,000,000 = 320.5 → 321 bp (half up)
    expected = {
        "loans": 4,
        "principal": 4_000_000_00,
        "enterprises": 4,
        "average_rate_bp": 321,
        "claims_decided": 2,
        "average_days": 4,  # (2 + 5) ÷ 2 = 3.5, half up
        "max_days": 5,
        "outstanding": 4_000_000_00,
        "npl": 1_400_000_00,  # the claimed loan (212 days) and the late one (133 days)
        "npl_ratio_bp": 3500,
        "filed_late": 0,
        "refused": 2,
        "approved": 800_000_00,
        "paid": 800_000_00,
    }
    assert {k: ccb[k] for k in expected} == expected
    jsb = banks["JSB"]
    assert (jsb["loans"], jsb["principal"], jsb["average_rate_bp"], jsb["claims_decided"]) == (
        1,
        5_000_000_00,
        345,
        0,
    )
    # its 2025 loan, unpaid since its maturity 2026-03-10, is non-performing
    assert (jsb["outstanding"], jsb["npl"], jsb["npl_ratio_bp"]) == (
        6_000_000_00,
        1_000_000_00,
        1666,
    )
    assert banks["ICBC_JS"]["loans"] == 0 and banks["ICBC_JS"]["npl_ratio_bp"] is None
    rules = {
        (r["bank_code"], r["rule"]): r["refused"] for r in doc.section("refusals_by_rule").rows
    }
    assert rules == {("CCB_JS", "SKD-E1"): 1, ("CCB_JS", "SKD-F2"): 1, ("CCB_JS", "SKD-F4"): 1}
    (chart,) = doc.charts
    assert (chart.section, chart.series, chart.threshold_bp) == (
        "assessment",
        ("npl_ratio_bp",),
        300,
    )
    # a bank reads its own row; an XB fund manager none of SKD's report
    own = annual(session, "SKD", 2026, "bank_ccb")
    assert own.scope == "CCB_JS" and list(by_bank(own, "assessment")) == ["CCB_JS"]
    with pytest.raises(Forbidden):
        annual(session, "SKD", 2026, "fund_xb")


def test_SKD_A1_as_of_and_cut_off(session: Session) -> None:
    """Figures as of an earlier date of the year (the XB evaluation's November), and
    from the rows recorded by the cut-off only."""
    loan = skd_loan(session, principal_yuan="300000.00")
    cut = datetime.now(UTC)
    repayment(session, loan, on=date(2026, 5, 4), principal_fen=100_000_00)
    then = by_bank(annual(session, "SKD", 2026, cutoff_at=cut), "assessment")["CCB_JS"]
    now = by_bank(annual(session, "SKD", 2026), "assessment")["CCB_JS"]
    assert (then["outstanding"], now["outstanding"]) == (300_000_00, 200_000_00)
    april = by_bank(annual(session, "SKD", 2026, as_of=date(2026, 4, 30)), "assessment")
    assert (april["CCB_JS"]["outstanding"], april["CCB_JS"]["npl"]) == (300_000_00, 0)


def test_XB_Rep_the_annual_evaluation_and_its_recommendations(session: Session) -> None:
    """连云港农商行: base lending far below the target in 2025 and 2026 and its 2026
    compensation at 100 % of its XB-Q1 limit → reduce; 江苏银行 has a base sub-fund
    agreement but no base loan in 2026 → terminate (第二十二条)."""
    x2 = xb_loan(  # filed before the limit is reached (it then suspends the bank)
        session,
        principal_yuan="500000.00",
        disbursed=date(2026, 1, 5),
        maturity=date(2026, 7, 5),
    )
    claim = xb_claim(session, status="paid")  # 2025 loan of 1,000,000.00, 50,000.00 paid
    recovery(session, claim, on=date(2026, 2, 20), amount_fen=100_000_00)  # 5,000.00 due
    repayment(session, x2, on=date(2026, 7, 5), principal_fen=500_000_00)
    doc = annual(session, "XB", 2026)
    banks = by_bank(doc, "evaluation")
    assert sorted(banks) == ["JSB", "LYG_RCB"]
    lyg = banks["LYG_RCB"]
    expected = {
        "loans": 1,
        "principal": 500_000_00,
        "base_loans": 1,
        "base_principal": 500_000_00,
        "base_principal_before": 1_000_000_00,
        "lending_target": EVALUATION.lending_target_fen,
        "outstanding": 1_000_000_00,
        "npl": 1_000_000_00,
        "npl_ratio_bp": 10_000,
        "overdue": 1_000_000_00,
        "approved": 50_000_00,
        "base_approved": 50_000_00,
        "limit": 50_000_00,  # 5 % of the 1,000,000.00 still owed on 2026-09-30
        "compensation_share_bp": 10_000,
        "paid": 50_000_00,
        "recovered": 100_000_00,
        "returns": 5_000_00,
        "received": 0,
        # 1,000,000.00 ÷ 99,955,000.00 (100,000,000.00 − 50,000.00 + 5,000.00 due)
        "leverage_bp": 100,
        "recommendation": "reduce",
        "recommendation_zh": "减少合作规模",
    }
    assert {k: lyg[k] for k in expected} == expected
    assert "2025–2026" in str(lyg["reason"])
    jsb = banks["JSB"]
    assert (jsb["recommendation"], jsb["base_loans"]) == ("terminate", 0)
    assert "第二十二条" in str(jsb["reason"])
    (fund,) = doc.section("fund").rows
    assert (fund["net_value"], fund["outstanding"], fund["leverage_bp"], fund["target_bp"]) == (
        99_955_000_00,
        1_000_000_00,
        100,
        100_000,
    )
    # a bank sees its own row, not the fund's net value
    own = annual(session, "XB", 2026, "bank_lyg")
    assert list(by_bank(own, "evaluation")) == ["LYG_RCB"]
    assert [s.key for s in own.sections] == ["evaluation", "refusals_by_rule"]


def p(**kw: Any) -> Performance:
    base = Performance(
        year=2026,
        base_loans=40,
        base_principal_fen=120_000_000_00,
        earlier_base_principal_fen=(90_000_000_00,),
        npl_ratio_bp=120,
        base_approved_fen=1_000_000_00,
        limit_fen=5_000_000_00,
    )
    return replace(base, **kw)


def test_XB_Rep_recommendation_rules() -> None:
    """第二十二条 as EvaluationPolicy reads it: target met, NPL below 3 %, compensation
    under 50 % of the limit → expand; any of them short → keep; target missed two years
    running with compensation at 50 % or more → reduce; no base loan → terminate."""
    assert recommend(p())[0] == "expand"
    assert recommend(p(npl_ratio_bp=300))[0] == "keep"
    assert recommend(p(base_principal_fen=99_999_999_99))[0] == "keep"
    assert recommend(p(base_approved_fen=2_500_000_00))[0] == "keep"  # 50 %: high
    assert recommend(p(base_approved_fen=2_499_999_99))[0] == "expand"
    missed = p(base_principal_fen=60_000_000_00, base_approved_fen=2_500_000_00)
    assert recommend(missed)[0] == "reduce"
    assert recommend(replace(missed, earlier_base_principal_fen=(100_000_000_00,)))[0] == "keep"
    assert recommend(replace(missed, base_approved_fen=2_000_000_00))[0] == "keep"
    assert recommend(p(base_loans=0, base_principal_fen=0))[0] == "terminate"
    # compensation with no limit basis is high; none with none is low
    assert recommend(replace(missed, limit_fen=0))[0] == "reduce"
    assert recommend(p(limit_fen=0, base_approved_fen=0))[0] == "expand"
    assert recommend(p(npl_ratio_bp=None))[0] == "expand"  # nothing outstanding
    strict = replace(EVALUATION, lending_target_fen=200_000_000_00)
    assert recommend(p(), strict)[0] == "keep"


def test_SKD_A1_a_programme_without_an_assessment_of_its_own_gets_the_figures() -> None:
    """`ProgramBase.annual_report`'s default: the year's figures per bank as they are."""
    y = BankYear(
        "JSB", "江苏银行", loans=2, principal_fen=3_000_000_00, rate_weighted=3_000_000_00 * 335
    )
    figures = AnnualFigures(
        program="SKD",
        year=2026,
        start=date(2026, 1, 1),
        as_of=date(2026, 12, 31),
        cutoff_at=datetime.now(UTC),
        banks={"JSB": y},
        scope=None,
    )
    part = ProgramBase.annual_report(ProgramBase(), None, figures)  # type: ignore[arg-type]
    (section,) = part.sections
    (row,) = section.rows
    assert (section.key, row["bank_code"], row["loans"], row["average_rate_bp"]) == (
        "banks",
        "JSB",
        2,
        335,
    )
