"""The edge's local store: SQLite through SQLAlchemy 2 (``database.dataSource``).

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

from sqlalchemy import Float, String, Text, create_engine, delete, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

__all__ = ["MetaStore", "PendingPatch", "StoreError"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class StoreError(Exception):
    """The local store failed (disk, corruption, locking)."""


class _Base(DeclarativeBase):
    pass


class _Meta(_Base):
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(256), primary_key=True)
    type: Mapped[str] = mapped_column(String(32), index=True)
    value: Mapped[str | None] = mapped_column(Text, nullable=True)


class _Pending(_Base):
    __tablename__ = "pending_patch"
    key: Mapped[str] = mapped_column(String(256), primary_key=True)
    operation: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(64))
    group: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[float] = mapped_column(Float)


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

        _Base.metadata.create_all(engine)
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
        with Session(self._engine) as s, s.begin():
            s.merge(_Meta(key=key, type=type_, value=json.dumps(value, separators=(",", ":"))))

    async def put(self, key: str, type_: str, value: Any) -> None:
        await self._run(lambda: self.put_sync(key, type_, value))

    def get_sync(self, key: str) -> Any | None:
        with Session(self._engine) as s:
            row = s.get(_Meta, key)
            if row is None or row.value is None:
                return None
            return json.loads(row.value)

    async def get(self, key: str) -> Any | None:
        return await self._run(lambda: self.get_sync(key))

    async def delete(self, keys: Iterable[str]) -> int:
        keys = list(keys)

        def run() -> int:
            with Session(self._engine) as s, s.begin():
                result = s.execute(delete(_Meta).where(_Meta.key.in_(keys)))
                return int(getattr(result, "rowcount", 0) or 0)

        return await self._run(run)

    def list_type_sync(self, type_: str) -> list[tuple[str, Any]]:
        with Session(self._engine) as s:
            rows = s.execute(select(_Meta.key, _Meta.value).where(_Meta.type == type_)).all()
            return [(k, json.loads(v)) for k, v in rows if v is not None]

    async def list_type(self, type_: str) -> list[tuple[str, Any]]:
        return await self._run(lambda: self.list_type_sync(type_))

    # -- pending status patches -------------------------------------------------------

    async def put_pending(self, patch: PendingPatch) -> None:
        def run() -> None:
            with Session(self._engine) as s, s.begin():
                s.merge(
                    _Pending(
                        key=patch.resource,
                        operation=patch.operation,
                        source=patch.source,
                        group=patch.group,
                        value=json.dumps(patch.content),
                        updated_at=time.time(),
                    )
                )

        await self._run(run)

    async def list_pending(self) -> list[PendingPatch]:
        def run() -> list[PendingPatch]:
            with Session(self._engine) as s:
                rows = s.scalars(select(_Pending).order_by(_Pending.updated_at)).all()
                return [
                    PendingPatch(r.key, r.operation, r.source, r.group, json.loads(r.value))
                    for r in rows
                ]

        return await self._run(run)

    async def remove_pending(self, resource: str, content: Any | None) -> None:
        """Remove the pending patch of ``resource``.

        With ``content``, only if it is still that patch (a newer one replaced
        it otherwise); with ``None``, whatever it is.
        """

        def run() -> None:
            stmt = delete(_Pending).where(_Pending.key == resource)
            if content is not None:
                stmt = stmt.where(_Pending.value == json.dumps(content))
            with Session(self._engine) as s, s.begin():
                s.execute(stmt)

        await self._run(run)
