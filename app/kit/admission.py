"""Admission control: the service sheds load instead of stalling everyone.

Every API request takes two slots before it runs: one of its client's (a client is the
user its bearer token names, else its address) and one of the process's. A client
holds at most `CLIENT_CONCURRENCY` requests in flight; as many more may wait up to
`CLIENT_WAIT_MS` (250 ms) for one of their own to finish and are then refused with **429
`too_many_requests`** and `Retry-After`; beyond that queue a request is refused at once,
without waiting (a queue that long could not drain within the wait anyway). The process
runs at most `MAX_IN_FLIGHT` requests (by default 40, its thread pool; those beyond the
database pool wait for a connection up to `DB_POOL_TIMEOUT_SECONDS`, then 503); more wait
up to `ADMISSION_WAIT_MS` (1 s) and are then refused with **503 `service_busy`** and
`Retry-After`. So a bank retrying one request 200 times in parallel gets most of them
refused at once, and another user's request still finds a free slot.

Probes (`/healthz`, `/readyz`), `/metrics` and the documentation are not counted."""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import ServiceBusy, TooManyRequests
from app.kit.middleware import _send_json

# request.state key: (bearer token, its verified claims), set when admission checked it
VERIFIED_TOKEN = "verified_token"  # noqa: S105 (a state key, not a secret)


class Verified(Protocol):
    """A bearer token's verified claims (`app.auth.tokens.Claims`)."""

    @property
    def user_id(self) -> int: ...


_EXEMPT = (
    "/healthz",
    "/readyz",
    "/metrics",
    "/docs",
    "/redoc",
    "/static-docs",
    "/openapi.json",
    "/problems",
)


@dataclass
class _Client:
    slots: asyncio.Semaphore
    users: int = 0  # requests holding or waiting for a slot


@dataclass
class _Loop:
    slots: asyncio.Semaphore
    clients: dict[str, _Client] = field(default_factory=dict)


@dataclass
class Admission:
    """The process's and each client's slots (one event loop: one uvicorn worker)."""

    max_in_flight: int
    per_client: int
    wait_seconds: float
    client_wait_seconds: float
    # per event loop (uvicorn runs one; a test client may run one per request)
    _loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Loop] = field(
        default_factory=weakref.WeakKeyDictionary
    )

    @property
    def retry_after(self) -> str:
        return str(max(1, math.ceil(self.client_wait_seconds)))

    @contextmanager
    def _client(self, state: _Loop, key: str) -> Iterator[_Client]:
        client = state.clients.get(key)
        if client is None:
            client = state.clients[key] = _Client(asyncio.Semaphore(self.per_client))
        client.users += 1
        try:
            yield client
        finally:
            client.users -= 1
            if client.users == 0:
                del state.clients[key]

    async def _acquire(self, slots: asyncio.Semaphore, wait: float) -> bool:
        try:
            await asyncio.wait_for(slots.acquire(), wait)
        except TimeoutError:
            return False
        return True

    async def run(self, key: str, scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:  # semaphores belong to one loop
            state = self._loops[loop] = _Loop(asyncio.Semaphore(self.max_in_flight))
        with self._client(state, key) as client:
            # at most `per_client` running and as many waiting: the rest are refused now
            queue_full = client.users > 2 * self.per_client
            if queue_full or not await self._acquire(client.slots, self.client_wait_seconds):
                await self._refuse(
                    send,
                    TooManyRequests(
                        f"this client already has {self.per_client} requests in flight; "
                        f"retry after {self.retry_after} s"
                    ),
                )
                return
            try:
                if not await self._acquire(state.slots, self.wait_seconds):
                    await self._refuse(
                        send,
                        ServiceBusy(
                            f"the service is at capacity ({self.max_in_flight} requests in "
                            f"flight); retry after {self.retry_after} s"
                        ),
                    )
                    return
                try:
                    await app(scope, receive, send)
                finally:
                    state.slots.release()
            finally:
                client.slots.release()

    async def _refuse(self, send: Send, error: TooManyRequests | ServiceBusy) -> None:
        await _send_json(send, error.status, error.body(), {"retry-after": self.retry_after})


class AdmissionMiddleware:
    """ASGI middleware applying `Admission` to every request but the exempt paths."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_in_flight: int,
        per_client: int,
        wait_seconds: float,
        client_wait_seconds: float,
        verify: Callable[[str], Verified | None],
    ) -> None:
        self.app = app
        self.admission = Admission(max_in_flight, per_client, wait_seconds, client_wait_seconds)
        self.verify = verify

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(_EXEMPT):
            await self.app(scope, receive, send)
            return
        await self.admission.run(self._client_key(scope), scope, receive, send, self.app)

    def _client_key(self, scope: Scope) -> str:
        """The user a valid bearer token names (`verify`: the token's verified claims),
        else the client's address: a forged or expired token queues with its address.
        The verified claims are kept in the request's state (`VERIFIED_TOKEN`), so that
        authentication does not check the signature a second time."""
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token:
            token = token.strip()
            claims = self.verify(token)
            if claims is not None:
                scope.setdefault("state", {})[VERIFIED_TOKEN] = (token, claims)
                return f"user:{claims.user_id}"
        client = scope.get("client")
        return f"addr:{client[0] if client else '-'}"
