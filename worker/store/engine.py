"""The engine: one per database URL per process, SQLite's pragmas, the JSON columns' serializer,
and the dialect's INSERT that the writers' ON CONFLICT statements start from.

Nothing here opens a session or a transaction: callers do.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session


@cache
def get_engine(url: str) -> Engine:
    """One engine per database URL per process (a forked worker process calls ``dispose``)."""
    json_options = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30}, **json_options)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = sa.create_engine(
            url, pool_pre_ping=True, pool_size=5, max_overflow=5, **json_options
        )
    return engine


def _json_dumps(value: Any) -> str:
    # The JSON columns (labels, scores, paragraphs, ...) through orjson: a tenth of the stdlib's
    # time; compact JSON (no spaces after separators), read back the same.
    return orjson.dumps(value).decode()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers (query, API) run while a worker writes; busy_timeout absorbs short lock waits.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _insert(session: Session, table: Any) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (SQLite and PostgreSQL both do)."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
