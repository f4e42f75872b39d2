"""API shapes for reference data. Inputs forbid unknown fields; outputs are built from
ORM rows with `from_attributes`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator
from stdnum.cn import uscc
from stdnum.exceptions import ValidationError as StdnumValidationError

from app.kit.money import Yuan, YuanIn
from app.kit.schemas import In, Out
from app.programs.base import get_program
from app.programs.fields import ProgramCode
from app.reference.persons import normalise_id_number

Program = ProgramCode
CODE_PATTERN = r"^[A-Z0-9][A-Z0-9_-]{1,31}$"


# --- regions -------------------------------------------------------------------------
class RegionCreate(In):
    """A region below the province: a city, a county or district (GB/T 2260), or a
    functional zone (开发区, 新区) with its city's code and a suffix."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "320505",
                    "name": "虎丘区",
                    "name_en": "Huqiu District",
                    "level": "county",
                    "parent_code": "320500",
                }
            ]
        }
    )

    code: str = Field(
        pattern=r"^[0-9]{6}(-[A-Z0-9]{1,9})?$",
        description="GB/T 2260 code; functional zones add a suffix (320700-XWXQ)",
    )
    name: str = Field(min_length=1, max_length=100, description="名称")
    name_en: str | None = Field(None, max_length=100)
    level: Literal["province", "city", "county", "functional_zone"]
    parent_code: str | None = Field(None, min_length=1, max_length=16)


class RegionOut(Out):
    code: str
    name: str
    name_en: str | None
    level: str
    parent_code: str | None


# --- banks ---------------------------------------------------------------------------
class BankCreate(In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "ABC_JS",
                    "name": "中国农业银行江苏省分行",
                    "name_en": "ABC Jiangsu Branch",
                    "unit_level": "provincial_branch",
                }
            ]
        }
    )

    code: str = Field(pattern=CODE_PATTERN, description="cooperation unit code, e.g. ICBC_JS")
    name: str = Field(min_length=1, max_length=100, description="合作银行名称")
    name_en: str | None = Field(None, max_length=100)
    unit_level: Literal["head_office", "provincial_branch"] = Field(
        description="总行 head_office / 省分行 provincial_branch"
    )


class BankOut(Out):
    code: str
    name: str
    name_en: str | None
    unit_level: str


# --- funds ---------------------------------------------------------------------------
class FundCreate(In):
    """A fund: an SKD city or county fund (`kind: city`, with its region; its finance
    bureau is registered as contributor), or an XB sub-fund of the pool (`kind:
    sub_fund`, with `parent_code` and its XB-S1 ratios)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "SKD_CITY_320200",
                    "name": "无锡市苏科贷风险补偿资金",
                    "name_en": "SKD Wuxi city fund",
                    "program": "SKD",
                    "kind": "city",
                    "region_code": "320200",
                },
                {
                    "code": "XB_NYD",
                    "name": "农业贷（专项子基金）",
                    "name_en": "XB agriculture sub-fund",
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
                        "limits": {"bank_limit_bp": 300, "warning_share_bp": 5000},
                    },
                },
            ]
        }
    )

    code: str = Field(pattern=CODE_PATTERN)
    name: str = Field(min_length=1, max_length=100)
    name_en: str | None = Field(None, max_length=100)
    program: Program
    kind: Literal["province", "city", "pool", "sub_fund"] = Field(
        description="province 省级资金 / city 市县资金 / pool 基金池 / sub_fund 子基金"
    )
    region_code: str | None = Field(
        None, min_length=1, max_length=16, description="required for a city fund"
    )
    parent_code: str | None = Field(
        None, min_length=1, max_length=32, description="the pool, required for a sub-fund"
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="per-fund policy terms; an XB sub-fund's `ratios_bp` (XB-S1) and "
        "`limits` {bank_limit_bp, warning_share_bp} (XB-Q1, default 500 and 5000)",
    )

    @field_validator("params")
    @classmethod
    def _params(cls, params: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """The programme checks its per-fund terms (XB-Q1 limits: known keys, whole basis
        points 0…10000)."""
        program = info.data.get("program")
        if program is not None:
            get_program(program).check_fund_params(params)
        return params


class ContributorCreate(In):
    """Who pays capital into a fund (出资人): SKD — 省财政 for the province fund, the city
    or county finance bureau for a city fund; XB — the XB-F0 contributors of the pool."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "GUANNAN",
                    "name": "灌南县",
                    "region_code": "320724",
                    "committed": "50000000.00",
                }
            ]
        }
    )

    code: str = Field(
        pattern=CODE_PATTERN,
        description="出资人 code, unique within the fund (its capital account is "
        "`<fund>:contributed_capital:<code>`), e.g. JS_FINANCE",
    )
    name: str = Field(min_length=1, max_length=100, description="出资人名称, e.g. 江苏省财政厅")
    region_code: str | None = Field(
        None, min_length=1, max_length=16, description="the contributor's region (GB/T 2260)"
    )
    committed: YuanIn | None = Field(
        None,
        description="认缴出资 committed capital. XB: required and more than zero, paid-in "
        "capital never exceeds it (XB-F0). SKD: optional; absent or 0.00 means no committed "
        "schedule (capital is paid in as budgets allow, with no ceiling)",
    )


class ContributorOut(Out):
    fund_code: str
    code: str
    name: str
    region_code: str | None
    committed: Yuan = Field(
        validation_alias="committed_fen", description="认缴 committed; 0.00: no schedule"
    )


class FundOut(Out):
    code: str
    name: str
    name_en: str | None
    program: str
    kind: str
    region_code: str | None
    parent_code: str | None
    status: str
    params: dict[str, Any]


class FundDetail(FundOut):
    contributors: list[ContributorOut]
    committed_capital: Yuan


# --- agreements ----------------------------------------------------------------------
class AgreementCreate(In):
    """A signed cooperation agreement 合作协议: SKD between a bank and a city/county fund
    (for the fund's region); XB between a bank and a sub-fund."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "bank_code": "CCB_JS",
                    "program": "SKD",
                    "fund_code": "SKD_CITY_320100",
                    "region_code": "320100",
                    "start_on": "2026-04-01",
                }
            ]
        }
    )

    bank_code: str = Field(min_length=1, max_length=32, description="合作银行 code")
    program: Program
    fund_code: str = Field(
        min_length=1, max_length=32, description="SKD: the city/county fund; XB: the (sub-)fund"
    )
    region_code: str | None = Field(
        None, min_length=1, max_length=16, description="SKD: the cooperating region"
    )
    start_on: date = Field(description="生效日期 the day the agreement takes effect")
    term_months: int | None = Field(
        None, ge=1, le=120, description="defaults to the programme's term (SKD 36)"
    )
    terms: dict[str, Any] = Field(default_factory=dict, description="per-agreement terms")


class AgreementAction(In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"reason": "季末不良率达到3%，按苏科贷办法暂停新增贷款投放"}]
        }
    )

    reason: str = Field(min_length=2, max_length=2000, description="原因 reason, recorded")


class AgreementEventOut(Out):
    action: str
    from_status: str | None
    to_status: str
    reason: str
    actor_id: int | None
    at: datetime


class AgreementOut(Out):
    id: int
    bank_code: str
    program: str
    fund_code: str
    region_code: str | None
    start_on: date
    end_on: date
    status: str
    terms: dict[str, Any]
    created_at: datetime


class AgreementDetail(AgreementOut):
    history: list[AgreementEventOut]


# --- LPR -----------------------------------------------------------------------------
class LprCreate(In):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"effective_on": "2026-11-20", "rate_bp": 300}]}
    )

    effective_on: date = Field(description="date from which this 1-year LPR is in force")
    rate_bp: int = Field(gt=0, lt=10000, description="1-year LPR in basis points (310 = 3.10 %)")


class LprOut(Out):
    effective_on: date
    rate_bp: int


# --- enterprises ---------------------------------------------------------------------
TaxRating = Literal["A", "B", "M", "C", "D"]
EnvRating = Literal["green", "blue", "yellow", "red", "black"]


def _credit_code(value: str) -> str:
    value = value.strip().upper()
    try:
        return str(uscc.validate(value))
    except StdnumValidationError as exc:
        raise ValueError(f"not a valid 统一社会信用代码 (GB 32100-2015): {exc}") from None


class ControllerIn(In):
    """实际控制人: the enterprise's actual controller, a natural person. The ID number is
    checked (GB 11643 check character) and never stored: only its keyed hash, which links
    every enterprise given the same number to one person (SKD-F4, XB-N2)."""

    name: str = Field(min_length=1, max_length=100, description="实际控制人姓名")
    id_number: str = Field(
        repr=False,
        description="居民身份证号 (GB 11643): 18 characters, the last a check character 0-9 "
        "or X (x accepted). Never stored or returned",
        json_schema_extra={"minLength": 18, "maxLength": 18},
    )

    @field_validator("id_number")
    @classmethod
    def _id_number(cls, value: str) -> str:
        return normalise_id_number(value)


class ControllerOut(Out):
    """The actual controller as recorded: the name and the person's id (enterprises with
    the same `person_id` share their controller); never the ID number."""

    name: str
    person_id: int = Field(validation_alias="id")


class EnterpriseFacts(In):
    name: str = Field(min_length=1, max_length=200, description="企业名称")
    region_code: str = Field(min_length=1, max_length=16, description="注册地 region (GB/T 2260)")
    independent_legal_person: bool = Field(True, description="独立法人")
    registered_on: date = Field(description="成立日期")
    prior_year_revenue: YuanIn = Field(description="上年度销售收入")
    employees: int = Field(ge=0, le=10_000_000, description="职工人数")
    rd_staff_share_bp: int = Field(0, ge=0, le=10000, description="研发人员占比, bp (1000 = 10 %)")
    rd_spend_share_bp: int = Field(0, ge=0, le=10000, description="研发投入占销售收入比, bp")
    ip_count: int = Field(0, ge=0, le=1_000_000, description="自主知识产权数量")
    dishonest_debtor: bool = Field(False, description="失信被执行人 (enterprise)")
    controller_dishonest_debtor: bool = Field(False, description="实际控制人为失信被执行人")
    overdue_loans_elsewhere: bool = Field(False, description="在其他机构有未结清逾期贷款")
    controller_overdue_loans: bool = Field(False, description="实际控制人有未结清逾期贷款")
    tax_credit_rating: TaxRating | None = Field(None, description="纳税信用等级")
    env_credit_rating: EnvRating | None = Field(None, description="环保信用等级")
    malicious_default_blacklist: bool = Field(False, description="恶意逃废债黑名单")
    last_malicious_overdue_on: date | None = Field(
        None, description="最近一次恶意逾期、欠息日期 (XB-E1: none in the prior 2 years)"
    )
    controller: ControllerIn | None = Field(
        None,
        description="实际控制人 {name, id_number}: the same id_number on two enterprises makes "
        "them one person's (SKD-F4, XB-N2 look at the loans of every enterprise the "
        "controller controls)",
    )


EXAMPLE_ENTERPRISE: dict[str, Any] = {
    "credit_code": "91320200MA1XD00016",
    "name": "无锡芯联微电子科技有限公司",
    "region_code": "320200",
    "registered_on": "2019-03-15",
    "prior_year_revenue": "26000000.00",
    "employees": 96,
    "rd_staff_share_bp": 2200,
    "rd_spend_share_bp": 750,
    "ip_count": 14,
    "tax_credit_rating": "A",
    "env_credit_rating": "green",
    "controller": {"name": "张伟", "id_number": "11010519491231002X"},
}


class EnterpriseCreate(EnterpriseFacts):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_ENTERPRISE]})

    credit_code: str = Field(
        min_length=18, max_length=18, description="统一社会信用代码, 18 characters with check digit"
    )

    _v_code = field_validator("credit_code")(_credit_code)


class EnterprisePatch(In):
    """Every field optional; only the fields sent are changed."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "prior_year_revenue": "21500000.00",
                    "employees": 92,
                    "tax_credit_rating": "B",
                    "dishonest_debtor": False,
                }
            ]
        }
    )

    name: str | None = Field(None, min_length=1, max_length=200)
    region_code: str | None = Field(None, min_length=1, max_length=16)
    independent_legal_person: bool | None = None
    registered_on: date | None = None
    prior_year_revenue: YuanIn | None = None
    employees: int | None = Field(None, ge=0, le=10_000_000)
    rd_staff_share_bp: int | None = Field(None, ge=0, le=10000)
    rd_spend_share_bp: int | None = Field(None, ge=0, le=10000)
    ip_count: int | None = Field(None, ge=0, le=1_000_000)
    dishonest_debtor: bool | None = None
    controller_dishonest_debtor: bool | None = None
    overdue_loans_elsewhere: bool | None = None
    controller_overdue_loans: bool | None = None
    tax_credit_rating: TaxRating | None = None
    env_credit_rating: EnvRating | None = None
    malicious_default_blacklist: bool | None = None
    last_malicious_overdue_on: date | None = None
    controller: ControllerIn | None = Field(
        None, description="实际控制人 {name, id_number}; null: none recorded"
    )


class EnterpriseOut(Out):
    id: int
    credit_code: str
    name: str
    region_code: str
    independent_legal_person: bool
    registered_on: date
    prior_year_revenue: Yuan = Field(validation_alias="prior_year_revenue_fen")
    employees: int
    rd_staff_share_bp: int
    rd_spend_share_bp: int
    ip_count: int
    dishonest_debtor: bool
    controller_dishonest_debtor: bool
    overdue_loans_elsewhere: bool
    controller_overdue_loans: bool
    tax_credit_rating: str | None
    env_credit_rating: str | None
    malicious_default_blacklist: bool
    last_malicious_overdue_on: date | None
    controller: ControllerOut | None = Field(description="实际控制人; null: none recorded")
    created_at: datetime
    updated_at: datetime


# --- enterprise batch (POST /enterprises/batch) ---------------------------------------
ENTERPRISE_BATCH_MAX = 10_000


class EnterpriseBatchIn(In):
    """Up to 10,000 enterprises, each checked exactly like `POST /enterprises`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "credit_code": "91320200MA1XD00029",
                            "name": "无锡澄星精密机械有限公司",
                            "region_code": "320200",
                            "registered_on": "2016-08-01",
                            "prior_year_revenue": "15800000.00",
                            "employees": 62,
                            "rd_staff_share_bp": 1200,
                            "rd_spend_share_bp": 400,
                            "ip_count": 6,
                        },
                        {
                            "credit_code": "91320400MA1XD0003N",
                            "name": "常州龙城新材料科技有限公司",
                            "region_code": "320400",
                            "registered_on": "2020-11-20",
                            "prior_year_revenue": "9300000.00",
                            "employees": 38,
                            "rd_staff_share_bp": 1500,
                            "rd_spend_share_bp": 600,
                            "ip_count": 4,
                            "tax_credit_rating": "B",
                        },
                    ]
                }
            ]
        }
    )

    items: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=ENTERPRISE_BATCH_MAX,
        description="each item is an enterprise with the fields of POST /enterprises "
        "(EnterpriseCreate)",
        json_schema_extra={"items": {"$ref": "#/components/schemas/EnterpriseCreate"}},
    )


class EnterpriseBatchError(Out):
    loc: list[str | int] = Field(description='["items", index, field]')
    msg: str
    code: str | None = None
    rule: str | None = None


class EnterpriseBatchItem(Out):
    index: int = Field(description="position of the item in the request")
    credit_code: str | None = Field(description="统一社会信用代码 (normalised when valid)")
    status: Literal["created", "unchanged", "refused"] = Field(
        description="created 新登记 / unchanged 已登记且信息一致 / refused 拒绝"
    )
    enterprise_id: int | None = None
    code: str | None = Field(None, description="the refusal's code")
    errors: list[EnterpriseBatchError] = Field(default_factory=list)


class EnterpriseBatchOut(Out):
    accepted: int = Field(description="created + unchanged")
    created: int
    unchanged: int
    refused: int
    results: list[EnterpriseBatchItem]

    @classmethod
    def of(cls, results: list[EnterpriseBatchItem]) -> EnterpriseBatchOut:
        created = sum(1 for r in results if r.status == "created")
        unchanged = sum(1 for r in results if r.status == "unchanged")
        return cls(
            accepted=created + unchanged,
            created=created,
            unchanged=unchanged,
            refused=len(results) - created - unchanged,
            results=results,
        )
