"""The request boundary (app/kit/uow.py): a sync endpoint's result is validated against
its response model in the worker thread that ran it — one trip to a worker thread for
both, not one each — with FastAPI's answers unchanged: the model's fields only, and a
result that does not fit the model is a 500."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import anyio.to_thread
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, field_validator

from app.kit.uow import TransactionalRoute

_validated_in: list[int] = []
_ran_in: list[int] = []


class Thing(BaseModel):
    name: str

    @field_validator("name")
    @classmethod
    def _where(cls, value: str) -> str:
        _validated_in.append(threading.get_ident())
        return value


@pytest.fixture
def trips(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The app with two sync endpoints on the request boundary's routes; the functions
    each request sends to a worker thread, by name."""
    router = APIRouter(route_class=TransactionalRoute)

    @router.get("/test-trips/thing", include_in_schema=False)
    def thing() -> Thing:
        _ran_in.append(threading.get_ident())
        return {"name": "x", "secret": "not in the model"}  # type: ignore[return-value]

    @router.get("/test-trips/broken", include_in_schema=False)
    def broken() -> Thing:
        return {"label": "no name"}  # type: ignore[return-value]

    app.include_router(router)
    sent: list[str] = []
    run_sync = anyio.to_thread.run_sync

    async def counted(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        sent.append(getattr(getattr(func, "func", func), "__name__", repr(func)))
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    return sent


def test_a_sync_endpoint_and_its_response_validation_take_one_trip(
    trips: list[str], client: TestClient
) -> None:
    _validated_in.clear()
    _ran_in.clear()
    r = client.get("/test-trips/thing")
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "x"}  # the response model's fields only
    # the endpoint with its validation, then the commit and close: two trips, not three
    assert trips == ["run_and_validate", "_commit_and_close"], trips
    assert _ran_in and _validated_in[0] == _ran_in[0]  # validated in the endpoint's thread
    assert _validated_in[0] != threading.main_thread().ident


def test_a_result_that_does_not_fit_the_response_model_is_still_a_500(
    trips: list[str], client: TestClient
) -> None:
    r = client.get("/test-trips/broken")
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"
