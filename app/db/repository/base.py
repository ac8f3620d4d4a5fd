"""What every group of statements shares: the transaction's psycopg connection."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import TupleRow


class Statements:
    """SQL run on one connection, inside the caller's unit of work (which commits or rolls back)."""

    def __init__(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self._connection = connection

    async def _rows(self, query: str, *, params: Any = None, prepare: bool | None = None) -> list[TupleRow]:
        cursor = await self._connection.execute(query, params, prepare=prepare)
        return await cursor.fetchall()

    async def _row(self, query: str, *, params: Any = None, prepare: bool | None = None) -> TupleRow | None:
        cursor = await self._connection.execute(query, params, prepare=prepare)
        return await cursor.fetchone()

    async def _count(self, query: str, *, params: Any = None) -> int:
        """How many rows the statement changed."""
        cursor = await self._connection.execute(query, params)
        return max(cursor.rowcount, 0)
