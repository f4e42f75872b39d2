"""Reference data every deployment needs, and the demo data of `make run`.

Both are idempotent: rows already present (by key) are left alone."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum.cn import uscc

from app.audit import capture as audit
from app.auth.passwords import hash_password
from app.calendar.service import seed_from_library
from app.kit.clock import CHINA_TZ
from app.kit.money import format_fen
from app.models import (
    Agreement,
    Bank,
    Enterprise,
    Fund,
    FundContributor,
    LedgerEntry,
    LibraryEvent,
    Loan,
    LprRate,
    Region,
    ReportRun,
    User,
)
from app.models.base import Base

if TYPE_CHECKING:
    from collections.abc import Callable

    from app.auth.principal import Principal

DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - demo only; production refuses demo data


def _json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resources.files("app.seed").joinpath(name).read_text("utf-8"))
    return data


def _add_missing(session: Session, model: type[Base], key: str, rows: list[dict[str, Any]]) -> int:
    column = getattr(model, key)
    present = set(session.scalars(select(column)).all())
    added = 0
    for row in rows:
        if row[key] not in present:
            session.add(model(**row))
            added += 1
    session.flush()
    return added


def register_missing_contributors(session: Session, rows: list[dict[str, Any]]) -> int:
    """Register the contributors (fund_code, code, name, region_code, committed_fen) not
    registered yet, through the service `POST /funds/{code}/contributors` uses."""
    from app.reference import service as reference
    from app.reference.schemas import ContributorCreate

    existing = set(session.execute(select(FundContributor.fund_code, FundContributor.code)).all())
    added = 0
    for row in rows:
        if (row["fund_code"], row["code"]) in existing:
            continue
        data = ContributorCreate.model_validate(
            {
                "code": row["code"],
                "name": row["name"],
                "region_code": row.get("region_code"),
                "committed": format_fen(row.get("committed_fen", 0)),
            }
        )
        reference.register_contributor(session, fund_code=row["fund_code"], data=data)
        added += 1
    return added


# who the audit trail names for what the seed writes
SEED_ACTOR = "system:seed"


def seed_reference(session: Session) -> dict[str, int]:
    """Jiangsu regions, the LPR history, the SKD province fund with 省财政 as its
    contributor, the XB pool, its base sub-fund and the XB-F0 contributor schedule; and
    the finance bureau of every SKD city fund that has no contributor yet."""
    from app.reference import repository as reference_repo
    from app.reference import service as reference
    from app.reference.programs import ensure_program_rows

    audit.acting_as(session, SEED_ACTOR)

    ensure_program_rows(session)  # every registered programme's `programs` row (0017)
    counts = {"regions": _add_missing(session, Region, "code", _json("regions.json")["regions"])}
    rates = [
        {"effective_on": date.fromisoformat(r["effective_on"]), "rate_bp": r["rate_bp"]}
        for r in _json("lpr.json")["rates"]
    ]
    counts["lpr_rates"] = _add_missing(session, LprRate, "effective_on", rates)
    funds = _json("funds.json")
    counts["funds"] = _add_missing(session, Fund, "code", funds["funds"])
    added = register_missing_contributors(session, funds["contributors"])
    for fund in reference_repo.city_funds_without_contributors(session):
        if reference.register_city_fund_contributor(session, fund) is not None:
            added += 1
    counts["contributors"] = added
    # SPEC M-3: the working-day calendar for every year the chinesecalendar package covers
    now = datetime.now(UTC)
    counts["calendar_years"] = len(
        seed_from_library(session, today=now.astimezone(CHINA_TZ).date(), now=now)
    )
    return counts


def demo_credit_code(region: str, org: str) -> str:
    """A 统一社会信用代码 with a valid GB 32100-2015 check digit, for demo enterprises."""
    body = "91" + region + org
    return body + uscc.calc_check_digit(body)


DEMO_BANKS: list[dict[str, Any]] = [
    {"code": "JSB", "name": "江苏银行", "name_en": "Bank of Jiangsu", "unit_level": "head_office"},
    {
        "code": "ICBC_JS",
        "name": "中国工商银行江苏省分行",
        "name_en": "ICBC Jiangsu Branch",
        "unit_level": "provincial_branch",
    },
    {
        "code": "CCB_JS",
        "name": "中国建设银行江苏省分行",
        "name_en": "CCB Jiangsu Branch",
        "unit_level": "provincial_branch",
    },
    {
        "code": "BOC_JS",
        "name": "中国银行江苏省分行",
        "name_en": "Bank of China Jiangsu Branch",
        "unit_level": "provincial_branch",
    },
    {
        "code": "LYG_RCB",
        "name": "连云港农村商业银行",
        "name_en": "Lianyungang Rural Commercial Bank",
        "unit_level": "head_office",
    },
]

DEMO_FUNDS: list[dict[str, Any]] = [
    {
        "code": "SKD_CITY_320100",
        "name": "南京市苏科贷风险补偿资金",
        "name_en": "SKD Nanjing city fund",
        "program": "SKD",
        "kind": "city",
        "region_code": "320100",
        "parent_code": None,
        "params": {},
    },
    {
        "code": "SKD_CITY_320500",
        "name": "苏州市苏科贷风险补偿资金",
        "name_en": "SKD Suzhou city fund",
        "program": "SKD",
        "kind": "city",
        "region_code": "320500",
        "parent_code": None,
        "params": {},
    },
    {
        "code": "SKD_CITY_320700",
        "name": "连云港市苏科贷风险补偿资金",
        "name_en": "SKD Lianyungang city fund",
        "program": "SKD",
        "kind": "city",
        "region_code": "320700",
        "parent_code": None,
        "params": {},
    },
    {
        "code": "XB_KCD",
        "name": "科创贷（专项子基金）",
        "name_en": "XB tech sub-fund (demo)",
        "program": "XB",
        "kind": "sub_fund",
        "region_code": "320700",
        "parent_code": "XB_POOL",
        "params": {
            "rule": "XB-S1",
            "ratios_bp": {
                "credit": {"fund": 7000, "bank": 3000},
                "guaranteed": {"fund": 4000, "guarantor": 4000, "bank": 2000},
            },
            # XB-Q1: its own annual limit, 3 % of the bank's 科创贷 principal (demo)
            "limits": {"bank_limit_bp": 300, "warning_share_bp": 5000},
        },
    },
]

# (bank, program, fund, region, start, status, reason for the status)
DEMO_AGREEMENTS = [
    ("JSB", "SKD", "SKD_CITY_320100", "320100", date(2025, 1, 1), "active", None),
    ("JSB", "SKD", "SKD_CITY_320500", "320500", date(2025, 1, 1), "active", None),
    ("ICBC_JS", "SKD", "SKD_CITY_320100", "320100", date(2024, 7, 1), "active", None),
    ("CCB_JS", "SKD", "SKD_CITY_320500", "320500", date(2026, 3, 1), "active", None),
    # suspended by the 2026-Q2 quarter-end evaluation of the demo (see _demo_loans)
    ("BOC_JS", "SKD", "SKD_CITY_320700", "320700", date(2024, 1, 1), "active", None),
    ("LYG_RCB", "XB", "XB_ZQCZD", None, date(2025, 6, 1), "active", None),
    ("JSB", "XB", "XB_ZQCZD", None, date(2025, 6, 1), "active", None),
    ("LYG_RCB", "XB", "XB_KCD", None, date(2026, 1, 1), "active", None),
]

# (region, org code part, name, revenue yuan, employees, rd staff bp, rd spend bp, ip, flags)
DEMO_ENTERPRISES: list[tuple[str, str, str, int, int, int, int, int, dict[str, Any]]] = [
    ("320100", "MA1XA0001", "南京智芯微电子有限公司", 18_000_000, 85, 2500, 800, 12, {}),
    ("320100", "MA1XA0002", "南京云图软件科技有限公司", 45_000_000, 210, 1800, 650, 30, {}),
    ("320500", "MA1XA0003", "苏州纳维光电科技有限公司", 260_000_000, 640, 1500, 420, 55, {}),
    (
        "320500",
        "MA1XA0004",
        "苏州绿源环保材料有限公司",
        12_000_000,
        40,
        1200,
        350,
        4,
        {"env_credit_rating": "red"},
    ),
    ("320706", "MA1XA0005", "连云港海州精密机械有限公司", 9_000_000, 35, 1000, 300, 3, {}),
    (
        "320700-KFQ",
        "MA1XA0006",
        "连云港开发区康泰医药科技有限公司",
        28_000_000,
        120,
        2200,
        900,
        18,
        {},
    ),
    (
        "320703",
        "MA1XA0007",
        "连云港港城物流服务有限公司",
        6_500_000,
        25,
        0,
        0,
        0,
        {"tax_credit_rating": "D", "dishonest_debtor": True},
    ),
    (
        "320700-XWXQ",
        "MA1XA0008",
        "连云港徐圩新材料有限公司",
        38_000_000,
        160,
        1300,
        500,
        9,
        {"tax_credit_rating": "A", "env_credit_rating": "green"},
    ),
]

# 南京 enterprises of 中国工商银行's demo batch job (SKD1 band, in the library since 2026-03-02)
DEMO_ENTERPRISES += [
    ("320100", "MA1XA0009", "南京芯联测控技术有限公司", 15_000_000, 48, 2000, 600, 7, {}),
    ("320100", "MA1XA0010", "南京启衡精密仪器有限公司", 21_000_000, 75, 1800, 500, 9, {}),
]

# 苏州 enterprises of 中国建设银行's demo loans and claims (SKD1 band)
DEMO_ENTERPRISES += [
    ("320500", f"MA1XB00{i:02d}", name, revenue, staff, 1500, 500, ip, {})
    for i, (name, revenue, staff, ip) in enumerate(
        [
            ("苏州恒瑞传感科技有限公司", 16_000_000, 70, 8),
            ("苏州启明激光设备有限公司", 19_000_000, 90, 11),
            ("苏州凌云数控科技有限公司", 12_500_000, 55, 6),
            ("苏州博远生物医药有限公司", 17_800_000, 66, 14),
            ("苏州星河新能源科技有限公司", 9_900_000, 38, 5),
            ("苏州同创工业软件有限公司", 14_200_000, 48, 7),
            ("苏州瀚海智能装备有限公司", 13_600_000, 52, 9),
        ],
        start=1,
    )
]

# 连云港 small enterprises for the XB demo, in the contributor districts (XB-E1)
XB_DISTRICTS = ("320706", "320703", "320700-KFQ", "320700-XWXQ")
DEMO_ENTERPRISES += [
    (
        XB_DISTRICTS[i % 4],
        f"MA1XC{i:04d}",
        f"连云港{['海州', '连云', '开发区', '徐圩'][i % 4]}示范企业{i}号有限公司",
        6_000_000 + 250_000 * i,
        20 + i,
        0,
        0,
        0,
        {},
    )
    for i in range(1, 31)
]

# The demo's city funds are added as rows with their contributors under the demo's own
# codes (the province fund's 江苏省财政厅 comes with the reference data).
DEMO_SKD_CONTRIBUTORS: list[dict[str, Any]] = [
    {
        "fund_code": "SKD_CITY_320100",
        "code": "NJ_FINANCE",
        "name": "南京市财政局",
        "region_code": "320100",
        "committed_fen": 10_000_000_000,
    },
    {
        "fund_code": "SKD_CITY_320500",
        "code": "SZ_FINANCE",
        "name": "苏州市财政局",
        "region_code": "320500",
        "committed_fen": 10_000_000_000,
    },
    {
        "fund_code": "SKD_CITY_320700",
        "code": "LYG_FINANCE",
        "name": "连云港市财政局",
        "region_code": "320700",
        "committed_fen": 5_000_000_000,
    },
]

# SKD capital paid in (fund, contributor, yuan, date)
DEMO_SKD_CAPITAL = [
    ("SKD_PROV", "JS_FINANCE", 300_000_000, date(2025, 1, 2)),
    ("SKD_CITY_320100", "NJ_FINANCE", 50_000_000, date(2025, 1, 6)),
    ("SKD_CITY_320500", "SZ_FINANCE", 50_000_000, date(2025, 1, 6)),
    ("SKD_CITY_320700", "LYG_FINANCE", 30_000_000, date(2024, 1, 5)),
]
XB_INITIAL_CAPITAL_FEN = 10_000_000_000  # XB-F0: 100,000,000 paid in at the start
XB_INITIAL_PAID_ON = date(2025, 6, 2)

# (username, role, bank, region, fund)
DEMO_USERS = [
    ("admin", "admin", None, None, None),
    ("bank_jsb", "bank", "JSB", None, None),
    ("bank_icbc", "bank", "ICBC_JS", None, None),
    ("bank_ccb", "bank", "CCB_JS", None, None),
    ("bank_boc", "bank", "BOC_JS", None, None),
    ("bank_lyg", "bank", "LYG_RCB", None, None),
    ("city_nanjing", "city_reviewer", None, "320100", None),
    ("city_suzhou", "city_reviewer", None, "320500", None),
    ("city_lyg", "city_reviewer", None, "320700", None),
    ("province", "province_reviewer", None, None, None),
    ("fund_nanjing", "fund_manager", None, None, "SKD_CITY_320100"),
    ("fund_suzhou", "fund_manager", None, None, "SKD_CITY_320500"),
    ("fund_province", "fund_manager", None, None, "SKD_PROV"),
    ("fund_xb", "fund_manager", None, None, "XB_POOL"),
    ("fund_xb_pay", "fund_manager", None, None, "XB_POOL"),  # pays what fund_xb reviewed
    ("committee", "committee", None, None, None),
    ("regulator", "regulator", None, None, None),
]


def seed_demo(session: Session) -> list[tuple[str, str, str]]:
    """Demo banks, city funds, a second XB sub-fund, agreements (one suspended),
    enterprises and one user per role. Returns (username, role, scope) of demo users."""
    seed_reference(session)  # recorded in the audit trail as `system:seed`
    _add_missing(session, Bank, "code", DEMO_BANKS)
    _add_missing(session, Fund, "code", DEMO_FUNDS)
    _add_missing(
        session,
        Enterprise,
        "credit_code",
        [
            {
                "credit_code": demo_credit_code(region[:6], org),
                "name": name,
                "region_code": region,
                "registered_on": date(2018, 5, 1),
                "prior_year_revenue_fen": revenue * 100,
                "employees": staff,
                "rd_staff_share_bp": rd_staff,
                "rd_spend_share_bp": rd_spend,
                "ip_count": ip,
                **flags,
            }
            for region, org, name, revenue, staff, rd_staff, rd_spend, ip, flags in DEMO_ENTERPRISES
        ],
    )
    if session.scalars(select(User.id).where(User.role != "admin")).first() is None:
        password_hash = hash_password(DEMO_PASSWORD)
        _add_missing(
            session,
            User,
            "username",
            [
                {
                    "username": u,
                    "role": r,
                    "bank_code": b,
                    "region_code": g,
                    "fund_code": f,
                    "password_hash": password_hash,
                }
                for u, r, b, g, f in DEMO_USERS
            ],
        )
    register_missing_contributors(session, DEMO_SKD_CONTRIBUTORS)
    admin = session.scalars(select(User).where(User.username == "admin")).one()
    if session.scalars(select(LedgerEntry.id)).first() is None:
        _demo_capital(session, actor_id=admin.id)
    if session.scalars(select(Agreement.id)).first() is None:
        _demo_agreements(session, admin)
    if session.scalars(select(LibraryEvent.id)).first() is None:
        _demo_library(session)
    if session.scalars(select(Loan.id)).first() is None:
        _demo_loans(session)
        _demo_claims(session)
        _demo_xb(session)
        _demo_arrears(session, today=datetime.now(CHINA_TZ).date())
        _demo_batch_job(session)
    if session.scalars(select(ReportRun.id)).first() is None:
        _demo_reports(session)
    return [(u, r, b or g or f or "-") for u, r, b, g, f in DEMO_USERS]


def _demo_reports(session: Session) -> None:
    """The last closed quarter's and year's reports stored for both programmes, as
    `ledger store-reports` stores them once a period closes (`GET /reports/runs`)."""
    from app.auth.principal import Principal
    from app.reports.runs import store_closed

    user = session.scalars(select(User).where(User.username == "regulator")).one()
    now = datetime.now(UTC)
    store_closed(
        session,
        ["SKD", "XB"],
        actor=Principal(user.id, user.username, user.role),
        today=now.astimezone(CHINA_TZ).date(),
        now=now,
    )


# SKD library (SKD-E1): (reviewer, enterprise org code, admitted on, removed on, reason)
DEMO_LIBRARY = [
    ("city_nanjing", "320100", "MA1XA0001", date(2025, 2, 10), None, None),
    ("city_nanjing", "320100", "MA1XA0002", date(2025, 2, 10), None, None),
    ("city_suzhou", "320500", "MA1XA0003", date(2025, 3, 3), None, None),
    (
        "city_suzhou",
        "320500",
        "MA1XA0004",
        date(2025, 3, 3),
        date(2025, 9, 1),
        "environmental credit rating downgraded to red (SKD-F4)",
    ),
    ("city_lyg", "320706", "MA1XA0005", date(2025, 4, 7), None, None),
    ("city_lyg", "320700", "MA1XA0006", date(2025, 4, 7), None, None),
    ("city_nanjing", "320100", "MA1XA0009", date(2026, 3, 2), None, None),
    ("city_nanjing", "320100", "MA1XA0010", date(2026, 3, 2), None, None),
    *[
        ("city_suzhou", "320500", f"MA1XB00{i:02d}", date(2026, 3, 2), None, None)
        for i in range(1, 8)
    ],
]


def _demo_library(session: Session) -> None:
    """Admissions by the city reviewers through the library service; one enterprise
    admitted and later removed; 徐圩新材料 still waits for review."""
    from app.auth.principal import Principal
    from app.library import service as library

    for username, region, org, admitted_on, removed_on, reason in DEMO_LIBRARY:
        user = session.scalars(select(User).where(User.username == username)).one()
        reviewer = Principal(
            user_id=user.id, username=username, role=user.role, region_code=user.region_code
        )
        code = demo_credit_code(region, org)
        library.admit(
            session,
            credit_code=code,
            comment="材料齐全，符合入库条件 (demo)",
            actor=reviewer,
            today=admitted_on,
        )
        if removed_on is not None:
            library.remove(
                session, credit_code=code, reason=reason or "", actor=reviewer, today=removed_on
            )


# SKD loans filed by the banks: (bank user, enterprise, contract, yuan, rate bp, security,
# guarantor, disbursed, maturity, filed on)
DEMO_LOANS = [
    (
        "bank_jsb",
        ("320100", "MA1XA0001"),
        "JSB-SKD-2026-0001",
        5_000_000,
        345,
        "credit",
        None,
        date(2026, 1, 12),
        date(2027, 1, 12),
        date(2026, 1, 14),
    ),
    (
        "bank_jsb",
        ("320500", "MA1XA0003"),
        "JSB-SKD-2026-0002",
        20_000_000,
        395,
        "guaranteed",
        "苏州信保融资担保有限公司",
        date(2026, 2, 2),
        date(2027, 2, 2),
        date(2026, 2, 3),
    ),
    (
        "bank_icbc",
        ("320100", "MA1XA0002"),
        "ICBC-SKD-2025-0107",
        8_000_000,
        375,
        "credit",
        None,
        date(2025, 12, 1),
        date(2026, 6, 1),
        date(2025, 12, 3),
    ),
    (
        "bank_boc",
        ("320706", "MA1XA0005"),
        "BOC-SKD-2025-0031",
        2_000_000,
        340,
        "credit",
        None,
        date(2025, 3, 10),
        date(2026, 3, 10),
        date(2025, 3, 12),
    ),
]


# 中国建设银行 in 苏州 (its first cooperation year, so SKD-Q2 exempts it from the cap):
# seven loans disbursed 2026-03-09, due 2026-06-09 unless said otherwise.
DEMO_LOANS += [
    (
        "bank_ccb",
        ("320500", f"MA1XB00{i:02d}"),
        f"CCB-SKD-2026-00{i:02d}",
        yuan,
        345,
        "credit",
        None,
        date(2026, 3, 9),
        maturity,
        date(2026, 3, 9),
    )
    for i, yuan, maturity in [
        (1, 3_000_000, date(2026, 6, 9)),  # claim paid, waiting for the province
        (2, 4_000_000, date(2026, 6, 9)),  # claim approved, waiting for the city payment
        (3, 1_500_000, date(2026, 6, 9)),  # claim waiting for the city review
        (4, 2_500_000, date(2026, 6, 9)),  # claim rejected at the city review
        (5, 1_000_000, date(2026, 9, 9)),  # renewed on 2026-09-09
        (6, 2_000_000, date(2026, 9, 9)),  # repaid in full
        (7, 1_200_000, date(2026, 6, 9)),  # claim returned for correction, with the bank
    ]
]


def _demo_loans(session: Session) -> None:
    """Loans filed through the filing service, each on its own (back-dated, M-5) filing
    day, after the province's quotas; then the 2026-Q2 quarter-end evaluation."""
    from app.auth.principal import Principal
    from app.loans import service as loans
    from app.loans.schemas import LoanFile

    province = session.scalars(select(User).where(User.username == "province")).one()
    province_reviewer = Principal(
        user_id=province.id, username="province", role="province_reviewer"
    )
    for year in (2025, 2026):
        loans.set_quota(
            session, program="SKD", year=year, amount_fen=2_000_000_000_00, actor=province_reviewer
        )
    now = datetime.now(UTC)
    for username, (
        region,
        org,
    ), contract, yuan, rate, security, guarantor, disbursed, maturity, filed_on in DEMO_LOANS:
        user = session.scalars(select(User).where(User.username == username)).one()
        bank = Principal(user_id=user.id, username=username, role="bank", bank_code=user.bank_code)
        loans.file_loan(
            session,
            principal=bank,
            today=filed_on,
            now=now,
            data=LoanFile(
                program="SKD",
                enterprise_credit_code=demo_credit_code(region, org),
                contract_no=contract,
                principal=f"{yuan}.00",
                annual_rate_bp=rate,
                disbursed_on=disbursed,
                maturity_on=maturity,
                security=security,
                guarantor=guarantor,
                controller_guarantee=True,
            ),
        )
    # 中国银行's loan is 112 days past due at 2026-06-30: the 2026-Q2 evaluation suspends it
    from app.evaluations import service as evaluations

    evaluations.evaluate(
        session,
        program="SKD",
        year=2026,
        quarter=2,
        today=date(2026, 7, 3),
        actor=province_reviewer,
    )


# 中国工商银行's batch of 2026-03-31, filed as a job (`Prefer: respond-async`, #16 part 5)
DEMO_BATCH_JOB: list[dict[str, Any]] = [
    {  # accepted
        "program": "SKD",
        "enterprise_credit_code": demo_credit_code("320100", "MA1XA0009"),
        "contract_no": "ICBC-SKD-2026-0201",
        "principal": "3000000.00",
        "annual_rate_bp": 340,
        "disbursed_on": "2026-03-27",
        "maturity_on": "2027-03-26",
        "security": "credit",
        "controller_guarantee": True,
    },
    {  # accepted: with the first, one chunk, so one ledger entry with a leg pair per loan
        "program": "SKD",
        "enterprise_credit_code": demo_credit_code("320100", "MA1XA0010"),
        "contract_no": "ICBC-SKD-2026-0205",
        "principal": "4500000.00",
        "annual_rate_bp": 330,
        "disbursed_on": "2026-03-27",
        "maturity_on": "2027-03-20",
        "security": "credit",
        "controller_guarantee": True,
    },
    {  # refused: 南京智芯 has its 江苏银行 loan (SKD-F3)
        "program": "SKD",
        "enterprise_credit_code": demo_credit_code("320100", "MA1XA0001"),
        "contract_no": "ICBC-SKD-2026-0202",
        "principal": "2000000.00",
        "annual_rate_bp": 340,
        "disbursed_on": "2026-03-27",
        "maturity_on": "2027-03-26",
        "security": "credit",
        "controller_guarantee": True,
    },
    {  # refused on three rules: the enterprise taken by the first item, rate, principal
        "program": "SKD",
        "enterprise_credit_code": demo_credit_code("320100", "MA1XA0009"),
        "contract_no": "ICBC-SKD-2026-0203",
        "principal": "5000000.01",
        "annual_rate_bp": 420,
        "disbursed_on": "2026-03-27",
        "maturity_on": "2027-03-26",
        "security": "credit",
        "controller_guarantee": True,
    },
    {"program": "SKD", "contract_no": "ICBC-SKD-2026-0204", "principal": "12.345"},  # malformed
]


def _demo_batch_job(session: Session) -> None:
    """中国工商银行's batch job, finished: filed as the worker files it (chunks of 2), in
    the seed's transaction, so `GET /loans/batch/jobs/{id}` shows it to `bank_icbc`."""
    from app.auth.principal import Principal
    from app.loans import jobs

    user = session.scalars(select(User).where(User.username == "bank_icbc")).one()
    at = datetime(2026, 3, 31, 2, 0, tzinfo=UTC)
    job = jobs.submit(
        session, items=DEMO_BATCH_JOB, principal=Principal.of(user), today=date(2026, 3, 31), now=at
    )
    job.status, job.started_at, job.attempts, job.worker = "running", at, 1, "seed"
    actor = session.info.get(audit.ACTOR_KEY)
    while job.status == "running":
        jobs.file_next(session, job, limit=2, now=at)  # recorded as bank_icbc's
    session.flush()
    session.info[audit.ACTOR_KEY] = actor


def _demo_agreements(session: Session, admin: User) -> None:
    """Through the agreement service, so the demo history is what a real one looks like."""
    from app.auth.principal import Principal
    from app.programs.base import get_program
    from app.reference import service as reference
    from app.reference.schemas import AgreementCreate

    actor = Principal(user_id=admin.id, username=admin.username, role="admin")
    for bank, program, fund, region, start, status, reason in DEMO_AGREEMENTS:
        agreement = reference.create_agreement(
            session,
            data=AgreementCreate(
                bank_code=bank, program=program, fund_code=fund, region_code=region, start_on=start
            ),
            actor=actor,
        )
        if status == "suspended":  # decided by the programme's authority (API.md)
            role = get_program(program).policy.agreement_authority_role
            authority = session.scalars(select(User).where(User.role == role)).first()
            if authority is None:
                raise LookupError(f"the demo has no {role} to suspend the agreement")
            reference.change_agreement_status(
                session,
                agreement_id=agreement.id,
                action="suspend",
                reason=reason or "",
                actor=Principal.of(authority),
            )


def _demo_capital(session: Session, *, actor_id: int) -> None:
    """XB-F0 initial 100,000,000 split pro rata to the commitments (M-2, exact to the
    fen), SKD capital, and one mistaken transfer corrected by its reversing entry."""
    from app.kit.allocation import allocate
    from app.ledger import capital
    from app.ledger import service as ledger

    now = datetime.now(UTC)
    contributors = session.scalars(
        select(FundContributor)
        .where(FundContributor.fund_code == "XB_POOL")
        .order_by(FundContributor.id)
    ).all()
    shares = allocate(XB_INITIAL_CAPITAL_FEN, [(c.code, c.committed_fen) for c in contributors])
    for c in contributors:
        capital.contribute(
            session,
            fund_code="XB_POOL",
            contributor_code=c.code,
            amount_fen=shares[c.code],
            paid_on=XB_INITIAL_PAID_ON,
            now=now,
            actor_id=actor_id,
        )
    for fund, contributor, yuan, paid_on in DEMO_SKD_CAPITAL:
        capital.contribute(
            session,
            fund_code=fund,
            contributor_code=contributor,
            amount_fen=yuan * 100,
            paid_on=paid_on,
            now=now,
            actor_id=actor_id,
        )
    mistaken = capital.contribute(
        session,
        fund_code="SKD_CITY_320500",
        contributor_code="SZ_FINANCE",
        amount_fen=5_000_000_00,
        paid_on=date(2025, 3, 3),
        now=now,
        actor_id=actor_id,
    )
    ledger.reverse(
        session,
        entry_id=mistaken.entry.id,
        business_date=date(2025, 3, 4),
        reason="duplicate transfer returned by the bank (demo)",
        now=now,
        actor_id=actor_id,
    )


def file_claim_with_documents(
    session: Session,
    *,
    loan_id: int,
    bank: Principal,
    on: date,
    now: datetime,
    documents: list[tuple[str, str]],
    lawsuit: tuple[str, date] | None = None,
    comment: str = "",
) -> int:
    """A bank's claim with its documents (kind, file name) as small PDFs: what the demo,
    the load generator and the concurrency tests all need before a review."""
    from app.claims import service as claims

    c = claims.file_claim(
        session,
        loan_id=loan_id,
        lawsuit_case_no=lawsuit[0] if lawsuit else None,
        lawsuit_accepted_on=lawsuit[1] if lawsuit else None,
        comment=comment,
        actor=bank,
        today=on,
        now=now,
    )
    for kind, filename in documents:
        claims.add_document(
            session,
            claim_id=c.id,
            kind=kind,
            filename=filename,
            content_type="application/pdf",
            content=b"%PDF-1.4\n% " + kind.encode() + b"\n%%EOF\n",
            allowed_types=["application/pdf"],
            max_bytes=1 << 20,
            actor=bank,
            now=now,
        )
    return c.id


def _demo_claims(session: Session) -> None:
    """Claims at every stage, through the claim service on back-dated business days:
    工商银行's claim capped by SKD-Q1, paid, reimbursed and partly recovered; 中国银行's
    waiting for the province review; 建设银行's waiting for the city review, approved,
    paid, rejected, returned for correction; one renewal and one repayment in full."""
    from app.auth.principal import Principal
    from app.claims import returns
    from app.claims import service as claims
    from app.loans import servicing
    from app.loans.schemas import LoanRenewal

    def who(username: str) -> Principal:
        return Principal.of(session.scalars(select(User).where(User.username == username)).one())

    def loan_id(contract: str) -> int:
        return session.scalars(select(Loan.id).where(Loan.contract_no == contract)).one()

    now = datetime.now(UTC)

    def claim(bank: str, contract: str, on: date, reviews: list[tuple[str, date]]) -> int:
        claim_id = file_claim_with_documents(
            session,
            loan_id=loan_id(contract),
            bank=who(bank),
            on=on,
            now=now,
            documents=[("application", "代偿申请书.pdf")],
            comment="借款人逾期超过90天，申请代偿 (demo)",
        )
        for reviewer, day in reviews:
            claims.step(
                session,
                claim_id=claim_id,
                stage="city_review" if reviewer.startswith("city_") else "province_review",
                approve=True,
                comment="材料齐全，同意 (demo)",
                ineligible_at_grant=False,
                actor=who(reviewer),
                today=day,
                now=now,
            )
        return claim_id

    # 工商银行 (cooperating since 2024-07-01): the cap cuts the claim (SKD-Q1)
    icbc = claim(
        "bank_icbc",
        "ICBC-SKD-2025-0107",
        date(2026, 9, 1),
        [("city_nanjing", date(2026, 9, 4)), ("province", date(2026, 9, 10))],
    )
    claims.step(
        session,
        stage="city_payment",
        claim_id=icbc,
        paid_on=date(2026, 9, 15),
        comment="",
        actor=who("fund_nanjing"),
        today=date(2026, 9, 15),
        now=now,
    )
    claims.step(
        session,
        stage="province_reimbursement",
        claim_id=icbc,
        paid_on=date(2026, 9, 25),
        comment="",
        actor=who("fund_province"),
        today=date(2026, 9, 25),
        now=now,
    )
    claims.record_recovery(
        session,
        claim_id=icbc,
        recovered_on=date(2026, 10, 20),
        amount_fen=1_200_000_00,
        costs_fen=60_000_00,
        actor=who("bank_icbc"),
        today=date(2026, 10, 20),
        now=now,
    )
    # 中国银行: first review done, waiting for the province
    claim("bank_boc", "BOC-SKD-2025-0031", date(2026, 6, 15), [("city_lyg", date(2026, 6, 18))])
    # 建设银行: paid and waiting for the province; approved and waiting for the city payment
    paid = claim(
        "bank_ccb",
        "CCB-SKD-2026-0001",
        date(2026, 9, 8),
        [("city_suzhou", date(2026, 9, 10)), ("province", date(2026, 9, 16))],
    )
    claims.step(
        session,
        stage="city_payment",
        claim_id=paid,
        paid_on=date(2026, 9, 22),
        comment="",
        actor=who("fund_suzhou"),
        today=date(2026, 9, 22),
        now=now,
    )
    claim(
        "bank_ccb",
        "CCB-SKD-2026-0002",
        date(2026, 9, 8),
        [("city_suzhou", date(2026, 9, 10)), ("province", date(2026, 9, 16))],
    )
    claim("bank_ccb", "CCB-SKD-2026-0003", date(2026, 9, 9), [])  # waiting for the city
    rejected = claim("bank_ccb", "CCB-SKD-2026-0004", date(2026, 9, 9), [])
    claims.step(
        session,
        stage="city_review",
        claim_id=rejected,
        approve=False,
        comment="催收记录不全，请补充后重新申请 (demo)",
        ineligible_at_grant=False,
        actor=who("city_suzhou"),
        today=date(2026, 9, 11),
        now=now,
    )
    # 退回补正 (SKD-C1): the city review returned it with two deficiencies; the bank resubmits
    returned = claim("bank_ccb", "CCB-SKD-2026-0007", date(2026, 9, 9), [])
    returns.return_for_correction(
        session,
        claim_id=returned,
        deficiencies=[
            returns.Deficiency("document_missing", "缺少逾期证明和催收记录"),
            returns.Deficiency("overdue_date_wrong", "申请书所写逾期日与借款合同到期日不符"),
        ],
        comment="请补正材料后重新提交 (demo)",
        actor=who("city_suzhou"),
        today=date(2026, 9, 11),
        now=now,
    )
    ccb = who("bank_ccb")
    servicing.renew(
        session,
        loan_id=loan_id("CCB-SKD-2026-0005"),
        data=LoanRenewal(
            contract_no="CCB-SKD-2026-0005-XD",
            principal="1000000.00",
            annual_rate_bp=340,
            disbursed_on=date(2026, 9, 9),
            maturity_on=date(2027, 9, 8),
            security="credit",
            controller_guarantee=True,
        ),
        actor=ccb,
        today=date(2026, 9, 9),
        now=now,
    )
    servicing.repay(
        session,
        loan_id=loan_id("CCB-SKD-2026-0006"),
        paid_on=date(2026, 9, 9),
        principal_fen=2_000_000_00,
        actor=ccb,
        today=date(2026, 9, 9),
        now=now,
    )


def _demo_xb(session: Session) -> None:
    """信保基金 at 连云港农商行: 16 performing loans (the XB-Q1 base), claims waiting for
    the manager's review (past its deadline), for the committee (with an XB-N8 finding),
    for payment (past its deadline), and one paid with a collection due to the fund; a
    late-filed loan (XB-N7), a loan under the second sub-fund, and the 2025-Q4 quarter-end
    evaluation whose stored basis the approvals read (XB-Q1)."""
    from app.auth.principal import Principal
    from app.claims import service as claims
    from app.loans import service as loans
    from app.loans.schemas import GuarantorConsentIn, LoanFile

    def who(username: str) -> Principal:
        return Principal.of(session.scalars(select(User).where(User.username == username)).one())

    bank, now = who("bank_lyg"), datetime.now(UTC)
    codes = iter(demo_credit_code(XB_DISTRICTS[i % 4][:6], f"MA1XC{i:04d}") for i in range(1, 25))

    def file(yuan: int, disbursed: date, maturity: date, filed: date, **kw: Any) -> int:
        n = next(codes)
        guaranteed = kw.pop("guaranteed", False)
        loan = loans.file_loan(
            session,
            principal=bank,
            today=filed,
            now=now,
            data=LoanFile(
                program="XB",
                enterprise_credit_code=n,
                contract_no=f"LYG-XB-{n[-6:]}",
                principal=f"{yuan}.00",
                annual_rate_bp=330 if guaranteed else 375,
                disbursed_on=disbursed,
                maturity_on=maturity,
                security="guaranteed" if guaranteed else "credit",
                guarantor="连云港信用融资担保有限公司" if guaranteed else None,
                fee_rate_bp=50 if guaranteed else 0,
                # XB-F2: the guarantor's 同意担保确认函, issued before the disbursement
                guarantor_consent=GuarantorConsentIn(
                    reference=f"连信担确〔{disbursed.year}〕{n[-4:]}号",
                    dated_on=disbursed - timedelta(days=3),
                )
                if guaranteed
                else None,
                controller_guarantee=True,
                **kw,
            ),
        )
        return loan.id

    for _ in range(16):
        file(3_000_000, date(2025, 6, 27), date(2027, 6, 25), date(2025, 6, 27))
    due = date(2026, 1, 5)  # 45 days past due on 2026-02-19
    paid = file(2_000_000, date(2025, 7, 4), due, date(2025, 7, 4))
    # guaranteed, with its consent letter (XB-F2)
    to_pay = file(2_000_000, date(2025, 7, 4), due, date(2025, 7, 4), guaranteed=True)
    finding = file(1_500_000, date(2025, 7, 4), due, date(2025, 7, 4))
    waiting = file(1_000_000, date(2025, 7, 4), due, date(2025, 7, 4))
    file(800_000, date(2025, 9, 1), date(2026, 9, 1), date(2025, 9, 22))  # late: XB-N7
    file(1_000_000, date(2026, 1, 12), date(2027, 1, 12), date(2026, 1, 12), sub_fund="XB_KCD")
    # the fund manager's 2025-Q4 evaluation stores each bank's limit basis per sub-fund
    # (XB-Q1): the committee decisions of 2026-Q1 below read it
    from app.evaluations import service as evaluations

    evaluations.evaluate(
        session, program="XB", year=2025, quarter=4, today=date(2026, 1, 8), actor=who("fund_xb")
    )

    def claim(loan_id: int, on: date) -> int:
        return file_claim_with_documents(
            session,
            loan_id=loan_id,
            bank=bank,
            on=on,
            now=now,
            documents=[
                ("application", "补偿申请书.pdf"),
                ("collection_plan", "贷款催收方案.pdf"),
                ("due_diligence", "尽职情况说明.pdf"),
            ],
            lawsuit=(f"(2026)苏0706民初{loan_id}号", date(2026, 2, 2)),
            comment="逾期超过45天，已起诉并获受理 (demo)",
        )

    manager, payer, committee = who("fund_xb"), who("fund_xb_pay"), who("committee")
    for loan_id, finding_codes in ((paid, []), (to_pay, []), (finding, ["XB-N8"])):
        c = claim(loan_id, date(2026, 2, 24))
        claims.step(
            session,
            claim_id=c,
            stage="manager_review",
            approve=not finding_codes,
            findings=tuple(finding_codes),
            opinion="催收记录不完整，存在放弃催收情形 (demo)" if finding_codes else "已尽职 (demo)",
            actor=manager,
            today=date(2026, 2, 27),
            now=now,
        )
        if finding_codes:
            continue
        claims.step(
            session,
            claim_id=c,
            stage="committee_decision",
            approve=True,
            comment="同意补偿 (demo)",
            actor=committee,
            today=date(2026, 3, 5),
            now=now,
        )
        if loan_id == paid:
            claims.step(
                session,
                claim_id=c,
                stage="payment",
                paid_on=date(2026, 3, 12),
                comment="",
                actor=payer,
                today=date(2026, 3, 12),
                now=now,
            )
            claims.record_recovery(
                session,
                claim_id=c,
                recovered_on=date(2026, 9, 1),
                amount_fen=600_000_00,
                costs_fen=40_000_00,
                actor=bank,
                today=date(2026, 9, 1),
                now=now,
            )
    claim(waiting, date(2026, 3, 2))  # the manager's opinion was due on 2026-03-11
    _demo_xb_queues(session, file, manager, now)


def _demo_xb_queues(
    session: Session, file: Callable[..., int], manager: Principal, now: datetime
) -> None:
    """What the console walk-through finds in the XB queues (`GET /claims?awaiting=me`):
    a claim the manager recommends with no finding, waiting for the committee, and one
    the manager returned to the bank for correction (XB-C2). Their loans were disbursed
    after the 2025-Q4 quarter end, so the stored XB-Q1 basis is as it was."""
    from app.auth.principal import Principal
    from app.claims import returns
    from app.claims import service as claims

    bank = Principal.of(session.scalars(select(User).where(User.username == "bank_lyg")).one())
    ready = file(1_200_000, date(2026, 1, 6), date(2026, 4, 6), date(2026, 1, 6))
    with_bank = file(900_000, date(2026, 1, 6), date(2026, 4, 6), date(2026, 1, 6))
    filed = {}
    for loan_id in (ready, with_bank):
        filed[loan_id] = file_claim_with_documents(
            session,
            loan_id=loan_id,
            bank=bank,
            on=date(2026, 6, 1),  # 56 days past due
            now=now,
            documents=[
                ("application", "补偿申请书.pdf"),
                ("collection_plan", "贷款催收方案.pdf"),
                ("due_diligence", "尽职情况说明.pdf"),
            ],
            lawsuit=(f"(2026)苏0706民初{3000 + loan_id}号", date(2026, 5, 25)),
            comment="逾期超过45天，已起诉并获受理 (demo)",
        )
    claims.step(
        session,
        claim_id=filed[ready],
        stage="manager_review",
        approve=True,
        findings=(),
        opinion="已尽职审查：贷前调查、放款审批和贷后催收记录齐全，未发现不予补偿情形 (demo)",
        actor=manager,
        today=date(2026, 6, 3),
        now=now,
    )
    returns.return_for_correction(
        session,
        claim_id=filed[with_bank],
        deficiencies=[
            returns.Deficiency("collection_plan_incomplete", "催收方案缺少时间安排和责任人"),
            returns.Deficiency("other", "借款合同复印件不清晰，请重新扫描上传"),
        ],
        comment="请补正后重新提交 (demo)",
        actor=manager,
        today=date(2026, 6, 2),
        now=now,
    )


def _demo_arrears(session: Session, *, today: date) -> None:
    """Overdue tracking (SPEC M-6) at 连云港农商行, dated back from the day the demo is
    seeded so that `GET /loans/watch` shows it on that day: an amortising XB loan whose
    fifth monthly instalment went unpaid 100 days ago, months before its maturity; one
    whose instalment is 40 days unpaid (crosses XB-C1's 45 days in 5); a bullet loan 80
    days past maturity (crosses the 90-day NPL boundary in 10); a loan current on the
    bank's books by our records that the bank reports in arrears since 35 days ago (its
    report counts: XB-C1 in 10 days)."""
    from app.auth.principal import Principal
    from app.kit.calendar import add_months
    from app.kit.money import format_fen
    from app.loans import service as loans
    from app.loans import servicing
    from app.loans.schemas import DelinquencyIn, InstalmentIn, LoanFile

    bank = Principal.of(session.scalars(select(User).where(User.username == "bank_lyg")).one())
    now = datetime.now(UTC)
    codes = iter(demo_credit_code(XB_DISTRICTS[i % 4][:6], f"MA1XC{i:04d}") for i in range(25, 31))

    def monthly(first_unpaid_due: date, paid: int, months: int) -> int:
        """A monthly-amortising 1,200,000 loan over `months`, its first `paid`
        instalments paid on their due dates, the next one due on `first_unpaid_due`."""
        disbursed = add_months(first_unpaid_due, -(paid + 1))
        maturity = add_months(disbursed, months)
        dues = [add_months(disbursed, m) for m in range(1, months + 1)]
        each = 1_200_000_00 // months
        plan = [
            InstalmentIn(
                due_on=d,
                principal=format_fen(each if m < months else 1_200_000_00 - each * (months - 1)),
                interest=format_fen(375_00 * (months - m + 1)),
            )
            for m, d in enumerate(dues, start=1)
        ]
        code = next(codes)
        loan = loans.file_loan(
            session,
            principal=bank,
            today=disbursed,
            now=now,
            data=LoanFile(
                program="XB",
                enterprise_credit_code=code,
                contract_no=f"LYG-XB-AM-{code[-6:]}",
                principal="1200000.00",
                annual_rate_bp=375,
                disbursed_on=disbursed,
                maturity_on=maturity,
                security="credit",
                controller_guarantee=True,
                schedule=plan,
            ),
        )
        for inst in plan[:paid]:
            servicing.repay(
                session,
                loan_id=loan.id,
                paid_on=inst.due_on,
                principal_fen=inst.principal,
                interest_fen=inst.interest,
                actor=bank,
                today=inst.due_on,
                now=now,
            )
        return loan.id

    monthly(today - timedelta(days=100), paid=4, months=24)  # in arrears before maturity
    monthly(today - timedelta(days=40), paid=5, months=18)  # XB-C1 in 5 days
    reported = monthly(today + timedelta(days=20), paid=6, months=12)  # current on our books
    matured = today - timedelta(days=80)  # the NPL boundary in 10 days
    code = next(codes)
    loans.file_loan(
        session,
        principal=bank,
        today=add_months(matured, -12),
        now=now,
        data=LoanFile(
            program="XB",
            enterprise_credit_code=code,
            contract_no=f"LYG-XB-BL-{code[-6:]}",
            principal="600000.00",
            annual_rate_bp=375,
            disbursed_on=add_months(matured, -12),
            maturity_on=matured,
            security="credit",
            controller_guarantee=True,
        ),
    )
    _demo_status_file(session, bank, today=today)
    # after the month's status file: the bank's later report is its view now
    servicing.report_delinquency(
        session,
        loan_id=reported,
        data=DelinquencyIn(
            as_of=today - timedelta(days=1),
            overdue_since=today - timedelta(days=34),
            principal_overdue="0",
            interest_overdue="3000.00",
            comment="核心系统：欠息 (demo)",
        ),
        actor=bank,
        today=today,
    )


def _demo_status_file(session: Session, bank: Principal, *, today: date) -> None:
    """连云港农商行's loan-level status file for the month before the seeding day (XB-Rep):
    its core system agrees with our books on every loan but two — it has 1,000.00 less
    outstanding on one amortising loan, and lists a contract we never had filed."""
    import json

    from app.kit.money import format_fen
    from app.status_reports import service as status_reports

    end = today.replace(day=1) - timedelta(days=1)
    assert bank.bank_code is not None
    books = status_reports.Books.load(session, bank.bank_code, [], end)
    rows: list[dict[str, str | None]] = []
    for loan_id in books.owing:
        loan, a = books.loans[loan_id], books.arrears[loan_id]
        since = a.own_since(interest=True)
        rows.append(
            {
                "contract_no": loan.contract_no,
                "outstanding": format_fen(a.outstanding_fen),
                "overdue_since": since.isoformat() if since else None,
                "principal_overdue": format_fen(a.principal_overdue_fen),
                "interest_overdue": format_fen(a.interest_overdue_fen),
                "status": status_reports.our_status(books, loan_id),
            }
        )
    amortising = next(r for r in rows if str(r["contract_no"]).startswith("LYG-XB-AM-"))
    amortising["outstanding"] = format_fen(
        int(str(amortising["outstanding"]).replace(".", "")) - 1_000_00
    )
    rows.append(
        {
            "contract_no": "LYG-XB-UNFILED-01",
            "outstanding": "500000.00",
            "overdue_since": None,
            "principal_overdue": "0.00",
            "interest_overdue": "0.00",
            "status": "current",
        }
    )
    status_reports.submit(
        session,
        bank_code=bank.bank_code,
        year=end.year,
        month=end.month,
        body=json.dumps({"rows": rows}, ensure_ascii=False).encode(),
        media_type="application/json",
        actor=bank,
        today=today,
    )
