"""The limit to compare the service with: a bare FastAPI endpoint doing a filing's inserts
(the loan row and its two memo legs) in one statement over async psycopg, no rules.

    DATABASE_URL=postgresql://... uvicorn bench.bare_app:app --workers 2"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel

URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/ledger_load")
URL = URL.replace("postgresql+psycopg://", "postgresql://")
pool = AsyncConnectionPool(URL, min_size=4, max_size=16, open=False)

# Workers start together: an advisory lock makes one create the tables (two concurrent
# CREATE TABLE IF NOT EXISTS can both pass the check and one fails on pg_type's key).
DDL = """
SELECT pg_advisory_xact_lock(4242);
CREATE TABLE IF NOT EXISTS bare_loans (
  id bigserial PRIMARY KEY, bank_code text NOT NULL, credit_code text NOT NULL,
  contract_no text NOT NULL, principal_fen bigint NOT NULL, disbursed_on date NOT NULL,
  maturity_on date NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (bank_code, contract_no));
CREATE TABLE IF NOT EXISTS bare_legs (
  loan_id bigint NOT NULL REFERENCES bare_loans(id), position int NOT NULL,
  account text NOT NULL, amount_fen bigint NOT NULL, PRIMARY KEY (loan_id, position));
"""
INSERT = """
WITH loan AS (
  INSERT INTO bare_loans (bank_code, credit_code, contract_no, principal_fen, disbursed_on,
                          maturity_on)
  VALUES (%(bank)s, %(code)s, %(contract)s, %(principal)s, %(disbursed)s, %(maturity)s)
  RETURNING id)
INSERT INTO bare_legs (loan_id, position, account, amount_fen)
SELECT id, p, a, v FROM loan, (VALUES (0, 'exposure_memo', %(share)s::bigint),
                                      (1, 'exposure_contra', -%(share)s::bigint)) AS l(p, a, v)
RETURNING loan_id
"""


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    await pool.open()
    async with pool.connection() as conn, conn.transaction():
        for statement in filter(str.strip, DDL.split(";")):
            await conn.execute(statement)
    yield
    await pool.close()


app = FastAPI(lifespan=lifespan)


class Filing(BaseModel):
    bank_code: str
    enterprise_credit_code: str
    contract_no: str
    principal: str
    disbursed_on: str
    maturity_on: str


@app.post("/bare/loans", status_code=201)
async def file(body: Filing) -> dict[str, int]:
    fen = int(body.principal.replace(".", ""))
    async with pool.connection() as conn:
        cur = await conn.execute(
            INSERT,
            {
                "bank": body.bank_code,
                "code": body.enterprise_credit_code,
                "contract": body.contract_no,
                "principal": fen,
                "disbursed": body.disbursed_on,
                "maturity": body.maturity_on,
                "share": fen * 4 // 10,
            },
        )
        row = await cur.fetchone()
    return {"id": int(row[0]) if row else 0}
