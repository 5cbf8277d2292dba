"""The edge's local store: SQLite through SQLAlchemy 2 Core (``database.dataSource``).

Table ``meta`` as KubeEdge's (``edge/pkg/metamanager/dao/meta.go``): ``key``
= the wire resource ``<ns>/<type>/<name>``, ``type`` = the resource type,
``value`` = the object as JSON. Table ``pending_patch`` (kubeedge-py) keeps
status patches made while the cloud was away, one row per object, the latest
winning, so that they survive a restart and are sent on reconnect.

The file is created mode 0600: it holds the node's secrets.

Durability: WAL journal, ``synchronous=FULL``; every public call is one
transaction, so a process killed mid-write leaves the previous or the new state,
never a mix. SQLite calls block, so they run on one worker thread (which also
serialises them); the asyncio loop never waits on the disk.

Only SQLAlchemy Core is used (tables and statements, no ORM): ``sqlalchemy.orm``
costs about 6 MiB of edgecore's resident memory and a key/value table needs
none of it (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Column,
    Float,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    select,
)
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from edgecore.metamanager.shapes import is_older

__all__ = ["MetaStore", "PendingPatch", "StoreError"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class StoreError(Exception):
    """The local store failed (disk, corruption, locking)."""


# The same schema the ORM classes of earlier versions created, so existing
# databases open unchanged.
_metadata = MetaData()

_META = Table(
    "meta",
    _metadata,
    Column("key", String(256), primary_key=True),
    Column("type", String(32), nullable=False, index=True),
    Column("value", Text, nullable=True),
)

_PENDING = Table(
    "pending_patch",
    _metadata,
    Column("key", String(256), primary_key=True),
    Column("operation", String(32), nullable=False),
    Column("source", String(64), nullable=False),
    Column("group", String(64), nullable=False),
    Column("value", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)


def _upsert(table: Table, **values: Any) -> Any:
    """INSERT, or UPDATE every column but the key when the key exists (the ORM's merge)."""
    stmt = insert(table).values(**values)
    return stmt.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={name: stmt.excluded[name] for name in values if name != "key"},
    )


def _put_meta(key: str, type_: str, value: Any) -> Any:
    return _upsert(_META, key=key, type=type_, value=json.dumps(value, separators=(",", ":")))


@dataclass(frozen=True, slots=True)
class PendingPatch:
    resource: str
    operation: str
    source: str
    group: str
    content: Any


def _sqlite_url(data_source: str | Path) -> str:
    text = str(data_source)
    if text.startswith("sqlite"):
        return text
    # KubeEdge's dataSource is a file path, possibly with ?_busy_timeout-style options.
    return "sqlite:///" + text.split("?", 1)[0]


class MetaStore:
    """Key/value store of cloud objects; every method is one atomic transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metastore")

    @classmethod
    def open_sync(cls, data_source: str | Path) -> MetaStore:
        url = _sqlite_url(data_source)
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            path = Path(url.removeprefix("sqlite:///"))
            path.parent.mkdir(parents=True, exist_ok=True)
            # the store holds secrets: owner-only from the first byte (SQLite
            # gives the -wal/-shm files the same mode)
            os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()

        _metadata.create_all(engine)
        return cls(engine)

    @classmethod
    async def open(cls, data_source: str | Path) -> MetaStore:
        return await asyncio.to_thread(cls.open_sync, data_source)

    async def close(self) -> None:
        await self._run(self._engine.dispose)
        self._executor.shutdown(wait=True)

    async def _run(self, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn)
        except SQLAlchemyError as exc:
            raise StoreError(f"local store failed: {exc}") from exc
        except RuntimeError as exc:  # the executor is shut down: the store is closed
            raise StoreError(f"local store is closed: {exc}") from exc

    # -- meta ---------------------------------------------------------------------

    def put_sync(self, key: str, type_: str, value: Any) -> None:
        with self._engine.begin() as conn:
            conn.execute(_put_meta(key, type_, value))

    async def put(self, key: str, type_: str, value: Any) -> None:
        await self._run(lambda: self.put_sync(key, type_, value))

    def put_answer_sync(self, key: str, type_: str, value: Any) -> Any:
        """Store an object the cloud answered with, unless the store already
        holds a newer version of it; return what the store holds afterwards."""
        with self._engine.begin() as conn:
            current = conn.execute(select(_META.c.value).where(_META.c.key == key)).scalar()
            if current is not None:
                stored = json.loads(current)
                if is_older(value, stored):
                    return stored
            conn.execute(_put_meta(key, type_, value))
        return value

    async def put_answer(self, key: str, type_: str, value: Any) -> Any:
        return await self._run(lambda: self.put_answer_sync(key, type_, value))

    def get_sync(self, key: str) -> Any | None:
        with self._engine.connect() as conn:
            value = conn.execute(select(_META.c.value).where(_META.c.key == key)).scalar()
        return None if value is None else json.loads(value)

    async def get(self, key: str) -> Any | None:
        return await self._run(lambda: self.get_sync(key))

    async def delete(self, keys: Iterable[str]) -> int:
        keys = list(keys)

        def run() -> int:
            with self._engine.begin() as conn:
                result = conn.execute(delete(_META).where(_META.c.key.in_(keys)))
                return int(getattr(result, "rowcount", 0) or 0)

        return await self._run(run)

    def list_type_sync(self, type_: str) -> list[tuple[str, Any]]:
        query = select(_META.c.key, _META.c.value).where(_META.c.type == type_)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [(k, json.loads(v)) for k, v in rows if v is not None]

    async def list_type(self, type_: str) -> list[tuple[str, Any]]:
        return await self._run(lambda: self.list_type_sync(type_))

    # -- pending status patches -------------------------------------------------------

    async def put_pending(self, patch: PendingPatch) -> None:
        def run() -> None:
            stmt = _upsert(
                _PENDING,
                key=patch.resource,
                operation=patch.operation,
                source=patch.source,
                group=patch.group,
                value=json.dumps(patch.content),
                updated_at=time.time(),
            )
            with self._engine.begin() as conn:
                conn.execute(stmt)

        await self._run(run)

    async def list_pending(self) -> list[PendingPatch]:
        def run() -> list[PendingPatch]:
            query = select(
                _PENDING.c.key,
                _PENDING.c.operation,
                _PENDING.c.source,
                _PENDING.c.group,
                _PENDING.c.value,
            ).order_by(_PENDING.c.updated_at)
            with self._engine.connect() as conn:
                rows = conn.execute(query).all()
            return [PendingPatch(k, op, src, grp, json.loads(v)) for k, op, src, grp, v in rows]

        return await self._run(run)

    async def remove_pending(self, resource: str, content: Any | None) -> None:
        """Remove the pending patch of ``resource``.

        With ``content``, only if it is still that patch (a newer one replaced
        it otherwise); with ``None``, whatever it is.
        """

        def run() -> None:
            stmt = delete(_PENDING).where(_PENDING.c.key == resource)
            if content is not None:
                stmt = stmt.where(_PENDING.c.value == json.dumps(content))
            with self._engine.begin() as conn:
                conn.execute(stmt)

        await self._run(run)
