"""Bulk registration of enterprises (POST /enterprises/batch, `ledger import-enterprises`).

Every item is checked exactly like `POST /enterprises` (SPEC §2 reference data: the
EnterpriseCreate shape with its GB 32100-2015 check digit, then the region), and every
failure of an item is listed with it. The batch registers; it never changes a recorded
enterprise, whoever sends it:

- a credit code not yet recorded → the enterprise is created (`created`);
- a credit code already recorded whose facts equal every field the item sends →
  `unchanged` (a re-sent file is harmless; fields the item leaves out are not compared);
- a credit code already recorded with other facts → refused (`enterprise_exists`), each
  differing field listed. Facts and risk flags (失信被执行人, ratings, blacklist…) change
  only through an admin's `PATCH /enterprises/{credit_code}`, so a partner bank can never
  alter what another party recorded;
- a credit code given again later in the same batch → refused (`duplicate_in_batch`).

An item's actual controller (`controller: {name, id_number}`) is the person its ID
number's keyed hash names (`app.reference.persons`): recorded with the first enterprise
that gives it, the same person for every later one. A number recorded, or given earlier
in the batch, under another name is refused (`controller_name_mismatch`); for a recorded
enterprise the controller is compared like any other field.

Refusals are decided before anything is written; the accepted items are inserted
together (one statement) and committed with the request. Lookups are one query each for
the regions, the recorded credit codes and the recorded controllers, whatever the batch
size."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import RowMapping
from sqlalchemy.orm import Session
from stdnum.cn import uscc

from app.errors import Conflict, Unprocessable, ValidationFailed
from app.reference import persons
from app.reference import repository as repo
from app.reference import schemas as s
from app.reference.errors import UnknownReference
from app.reference.service import ControllerNameMismatch

log = logging.getLogger("app.reference.enterprise_batch")


class DuplicateInBatch(Unprocessable):
    """A batch item gives a credit code an earlier item of the same batch already gave;
    the later item is refused."""

    code = "duplicate_in_batch"
    title, title_zh = "Credit code given twice in the batch", "同一批次中统一社会信用代码重复"


class EnterpriseExists(Conflict):
    """A batch item's enterprise is already registered with other facts; the batch only
    registers, so each differing field is listed and the item is refused. An admin
    changes a recorded enterprise with `PATCH /enterprises/{credit_code}`."""

    code = "enterprise_exists"
    title, title_zh = "Enterprise registered with other facts", "企业已登记且信息不一致"


# The item's code when it fails for several reasons: the first kind found in this order.
_CODE_ORDER = (
    ValidationFailed.code,
    UnknownReference.code,
    DuplicateInBatch.code,
    ControllerNameMismatch.code,
    EnterpriseExists.code,
)


@dataclass
class _Item:
    index: int
    raw: Mapping[str, Any]
    data: s.EnterpriseCreate | None = None
    credit_code: str | None = None  # normalised when valid, else as sent (if text)
    valid_code: str | None = None  # the normalised code when it is a valid one
    errors: list[tuple[str, s.EnterpriseBatchError]] = field(default_factory=list)
    controller_hash: str | None = None  # the actual controller's ID-number hash, if given

    def refuse(
        self, kind: str, loc: tuple[str | int, ...], msg: str, code: str | None = None
    ) -> None:
        self.errors.append(
            (kind, s.EnterpriseBatchError(loc=["items", self.index, *loc], msg=msg, code=code))
        )

    def refused(self) -> s.EnterpriseBatchItem:
        kinds = {kind for kind, _ in self.errors}
        return s.EnterpriseBatchItem(
            index=self.index,
            credit_code=self.credit_code,
            status="refused",
            code=next(k for k in _CODE_ORDER if k in kinds),
            errors=[e for _, e in self.errors],
        )


def _valid_code(value: Any) -> str | None:
    """The credit code normalised as EnterpriseCreate does, when it is a valid one."""
    if not isinstance(value, str):
        return None
    value = value.strip().upper()
    return value if len(value) == 18 and uscc.is_valid(value) else None


def _parse(index: int, raw: Mapping[str, Any]) -> _Item:
    item = _Item(index=index, raw=raw)
    try:
        item.data = s.EnterpriseCreate.model_validate(raw)
    except ValidationError as exc:
        for e in exc.errors():
            item.refuse(
                ValidationFailed.code,
                tuple(str(p) if not isinstance(p, int) else p for p in e["loc"]),
                str(e["msg"]).removeprefix("Value error, "),
            )
    sent = raw.get("credit_code")
    item.valid_code = item.data.credit_code if item.data is not None else _valid_code(sent)
    item.credit_code = item.valid_code or (sent.strip() if isinstance(sent, str) else None)
    return item


def _region_of(item: _Item) -> str | None:
    """The region the item names, unless its region field is itself malformed."""
    if item.data is not None:
        return item.data.region_code
    if any(e.loc[2:3] == ["region_code"] for _, e in item.errors):
        return None
    region = item.raw.get("region_code")
    return region.strip() if isinstance(region, str) and region.strip() else None


def columns(data: s.EnterpriseCreate, fields: set[str] | None = None) -> dict[str, Any]:
    """The enterprise's column values for these fields (default: all), money in fen; the
    controller is not among them (its column holds the person's id)."""
    values = data.model_dump(exclude={"controller"}, include=fields)
    if "prior_year_revenue" in values:
        values["prior_year_revenue_fen"] = values.pop("prior_year_revenue")
    return values


def _differences(
    item: _Item, recorded: RowMapping, controllers: dict[str, persons.Known]
) -> list[str]:
    """The fields the item sends whose values differ from the recorded enterprise (the
    controller: another person, or none where one is recorded, or one where none is)."""
    assert item.data is not None
    sent = item.data.model_fields_set - {"credit_code"}
    found = [
        (column.removesuffix("_fen") if column == "prior_year_revenue_fen" else column)
        for column, value in columns(item.data, sent).items()
        if recorded[column] != value
    ]
    if "controller" in sent:
        known = controllers.get(item.controller_hash) if item.controller_hash else None
        if recorded["controller_id"] != (known.id if known else None) or (
            item.controller_hash is not None and known is None
        ):
            found.append("controller")
    return sorted(found)


def _check_controllers(session: Session, items: list[_Item], key: str) -> dict[str, persons.Known]:
    """Each item's controller hash; a number given earlier in the batch, or recorded,
    under another name refused. The recorded controllers by hash (one query)."""
    first: dict[str, tuple[str, int]] = {}
    for item in items:
        controller = item.data.controller if item.data is not None else None
        if controller is None:
            continue
        item.controller_hash = persons.id_hash(controller.id_number, key)
        name, index = first.setdefault(item.controller_hash, (controller.name, item.index))
        if name != controller.name:
            item.refuse(
                ControllerNameMismatch.code,
                ("controller", "name"),
                f"this ID number is given by item {index} of this batch under another name",
                ControllerNameMismatch.code,
            )
    known = persons.known_persons(session, set(first))
    for item in items:
        if item.controller_hash is None or item.data is None or item.data.controller is None:
            continue
        if persons.name_mismatch(known.get(item.controller_hash), item.data.controller.name):
            item.refuse(
                ControllerNameMismatch.code,
                ("controller", "name"),
                persons.NAME_MISMATCH,
                ControllerNameMismatch.code,
            )
    return known


def register_batch(
    session: Session,
    *,
    items: list[dict[str, Any]],
    by_bank: str | None,
    actor_id: int | None,
    person_key: str,
) -> list[s.EnterpriseBatchItem]:
    """Register the batch's new enterprises; one result per item, in order. `by_bank`
    names the partner bank sending it (None: an admin); it is logged with `actor_id`.
    `person_key` (settings.person_id_key) hashes the actual controllers' ID numbers.
    Services flush, never commit: the caller's transaction commits the accepted items."""
    parsed = [_parse(i, raw) for i, raw in enumerate(items)]

    regions = {r for item in parsed if (r := _region_of(item)) is not None}
    known = repo.known_region_codes(session, regions)
    first: dict[str, int] = {}
    for item in parsed:
        region = _region_of(item)
        if region is not None and region not in known:
            item.refuse(
                UnknownReference.code,
                ("region_code",),
                f"unknown region {region!r}",
                UnknownReference.code,
            )
        if item.valid_code is not None:
            if item.valid_code in first:
                item.refuse(
                    DuplicateInBatch.code,
                    ("credit_code",),
                    f"credit code already given by item {first[item.valid_code]} of this batch",
                    DuplicateInBatch.code,
                )
            else:
                first[item.valid_code] = item.index

    controllers = _check_controllers(
        session, [item for item in parsed if item.data is not None], person_key
    )
    clean = [item for item in parsed if not item.errors and item.data is not None]
    recorded = repo.enterprise_rows_by_codes(session, [i.valid_code for i in clean if i.valid_code])
    results: dict[int, s.EnterpriseBatchItem] = {}
    new: list[_Item] = []
    for item in clean:
        assert item.data is not None
        row = recorded.get(item.data.credit_code)
        if row is None:
            new.append(item)
            continue
        for name in _differences(item, row, controllers):
            item.refuse(
                EnterpriseExists.code,
                (name,),
                "the enterprise is already registered with another value; only an admin "
                f"changes it (PATCH /enterprises/{item.data.credit_code})",
                EnterpriseExists.code,
            )
        if not item.errors:
            results[item.index] = s.EnterpriseBatchItem(
                index=item.index,
                credit_code=item.data.credit_code,
                status="unchanged",
                enterprise_id=int(row["id"]),
            )

    named = {
        i.controller_hash: i.data.controller.name
        for i in new
        if i.controller_hash is not None and i.data is not None and i.data.controller is not None
    }
    people = persons.ensure_persons(session, named) if named else {}
    rows = [
        columns(i.data)
        | {"controller_id": people[i.controller_hash].id if i.controller_hash else None}
        for i in new
        if i.data is not None
    ]
    ids = repo.insert_enterprises(session, rows)
    for item, enterprise_id in zip(new, ids, strict=True):
        assert item.data is not None
        results[item.index] = s.EnterpriseBatchItem(
            index=item.index,
            credit_code=item.data.credit_code,
            status="created",
            enterprise_id=enterprise_id,
        )
    for item in parsed:
        if item.errors:
            results[item.index] = item.refused()
    log.info(
        "enterprise batch by %s (%s): %d items, %d created, %d refused",
        f"bank {by_bank}" if by_bank else "admin",
        f"user {actor_id}" if actor_id is not None else "command line",
        len(items),
        len(ids),
        sum(1 for item in parsed if item.errors),
    )
    return [results[i] for i in range(len(items))]
