from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.kit.schemas import In

Role = Literal[
    "admin", "bank", "city_reviewer", "province_reviewer", "fund_manager", "committee", "regulator"
]


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int = Field(description="seconds until the token expires")


class UserCreate(In):
    """A user with a role and, for the roles that have one, its data scope: a bank user
    its bank, a city reviewer its region, a fund manager its fund; the other scope
    fields stay empty."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "username": "bank_jsb_ops",
                    "password": "Jsb-credit-2026!",
                    "role": "bank",
                    "bank_code": "JSB",
                }
            ]
        }
    )

    username: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_.-]{2,63}$",
        description="登录名: 3–64 lowercase letters, digits, `_ . -`",
    )
    password: str = Field(min_length=10, max_length=256, description="初始密码 (10+ characters)")
    role: Role = Field(
        description="admin 管理员 / bank 合作银行 / city_reviewer 市县初审 / "
        "province_reviewer 省级复审 / fund_manager 基金管理人 / "
        "committee 会审 / regulator 监管"
    )
    bank_code: str | None = Field(
        None, min_length=1, max_length=32, description="required for role bank"
    )
    region_code: str | None = Field(
        None, min_length=1, max_length=16, description="required for role city_reviewer"
    )
    fund_code: str | None = Field(
        None, min_length=1, max_length=32, description="required for role fund_manager"
    )


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    role: str
    bank_code: str | None
    region_code: str | None
    fund_code: str | None
    is_active: bool
    created_at: datetime


class Me(BaseModel):
    user_id: int
    username: str
    role: str
    bank_code: str | None
    region_code: str | None
    fund_code: str | None
