"""People the rules look at across enterprises: an enterprise's actual controller (实际控制人,
SKD-F4, XB-N2). A person is known by the keyed hash of their resident ID number (居民身份证号,
GB 11643): the number itself is never stored (`app.reference.persons`)."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntPK, CreatedAt


class Person(CreatedAt, Base):
    __tablename__ = "persons"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    # HMAC-SHA256 of the normalised ID number under the server's PERSON_ID_KEY, hex
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
