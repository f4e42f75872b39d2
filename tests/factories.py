"""Small factories with keyword overrides."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.library import service as library
from app.models import Agreement, Bank, Enterprise, User
from app.seed.loader import demo_credit_code

_serial = itertools.count(1)
CITY_REVIEWERS = {"320100": "city_nanjing", "320500": "city_suzhou", "320700": "city_lyg"}


def member_enterprise(
    session: Session, *, region: str = "320100", revenue_yuan: int = 18_000_000, **facts: Any
) -> Enterprise:
    """A fresh enterprise that meets SKD-E1, admitted to the library by its city reviewer."""
    n = next(_serial)
    values: dict[str, Any] = {
        "credit_code": demo_credit_code(region[:6], f"MA1T{n:05d}"),
        "name": f"测试科技{n}号有限公司",
        "region_code": region,
        "registered_on": date(2019, 1, 1),
        "prior_year_revenue_fen": revenue_yuan * 100,
        "employees": 80,
        "rd_staff_share_bp": 2000,
        "rd_spend_share_bp": 600,
        "ip_count": 5,
    }
    enterprise = Enterprise(**{**values, **facts})
    session.add(enterprise)
    session.flush()
    reviewer = session.scalars(
        select(User).where(User.username == CITY_REVIEWERS[region[:4] + "00"])
    ).one()
    library.admit(
        session,
        credit_code=enterprise.credit_code,
        comment="factory",
        actor=Principal(
            user_id=reviewer.id,
            username=reviewer.username,
            role="city_reviewer",
            region_code=reviewer.region_code,
        ),
        today=date(2026, 1, 5),
    )
    session.commit()
    return enterprise


def xb_enterprise(
    session: Session,
    *,
    region: str = "320706",
    registered_on: date = date(2019, 1, 1),
    **facts: Any,
) -> Enterprise:
    """A fresh small enterprise in an XB contributor district (XB-E1)."""
    n = next(_serial)
    enterprise = Enterprise(
        credit_code=demo_credit_code(region[:6], f"MA1X{n:05d}"),
        name=f"连云港测试{n}号有限公司",
        region_code=region,
        registered_on=registered_on,
        prior_year_revenue_fen=8_000_000_00,
        employees=30,
        **facts,
    )
    session.add(enterprise)
    session.commit()
    return enterprise


def new_bank(
    session: Session,
    code: str,
    *,
    since: date,
    region: str | None = "320100",
    xb_sub_funds: tuple[str, ...] = (),
) -> str:
    """A bank with agreements from `since` for three years: SKD with the city fund of
    `region` (None: no SKD agreement) and XB with each of `xb_sub_funds`; and its user
    `bank_<code>`. Committed."""
    session.add(Bank(code=code, name=f"测试银行{code}", unit_level="provincial_branch"))
    session.flush()
    end = date(since.year + 3, since.month, since.day)
    if region is not None:
        session.add(
            Agreement(
                bank_code=code,
                program="SKD",
                fund_code=f"SKD_CITY_{region}",
                region_code=region,
                start_on=since,
                end_on=end,
                status="active",
            )
        )
    for sub_fund in xb_sub_funds:
        session.add(
            Agreement(
                bank_code=code,
                program="XB",
                fund_code=sub_fund,
                start_on=since,
                end_on=end,
                status="active",
            )
        )
    admin = session.scalars(select(User).where(User.username == "admin")).one()
    username = f"bank_{code.lower()}"
    session.add(
        User(username=username, role="bank", bank_code=code, password_hash=admin.password_hash)
    )
    session.commit()
    return username
