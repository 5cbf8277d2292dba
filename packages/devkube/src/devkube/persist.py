"""SQLite persistence (``--data-dir``) with SQLAlchemy Core: one row per object and the
resourceVersion counter, written through on every change so a restarted devkube keeps
its objects and never reuses a resourceVersion. The watch history is not persisted:
after a restart, watches from an older resourceVersion get 410 Expired and relist."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Integer,
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

_meta = MetaData()
objects = Table(
    "objects",
    _meta,
    Column("resource", String, primary_key=True),
    Column("namespace", String, primary_key=True),
    Column("name", String, primary_key=True),
    Column("rv", Integer, nullable=False),
    Column("body", Text, nullable=False),
)
counters = Table(
    "counters",
    _meta,
    Column("key", String, primary_key=True),
    Column("value", Integer, nullable=False),
)


class SqliteBackend:
    def __init__(self, path: Path) -> None:
        self._engine = create_engine(f"sqlite:///{path}")

        @event.listens_for(self._engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        _meta.create_all(self._engine)

    def load(self) -> tuple[int, list[tuple[str, str, str, dict[str, Any]]]]:
        with self._engine.connect() as conn:
            row = conn.execute(select(counters.c.value).where(counters.c.key == "rv")).first()
            rv = int(row[0]) if row else 1
            rows = [
                (r.resource, r.namespace, r.name, json.loads(r.body))
                for r in conn.execute(select(objects))
            ]
        return rv, rows

    def _set_rv(self, conn: Any, rv: int) -> None:
        stmt = insert(counters).values(key="rv", value=rv)
        conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": rv}))

    def put(self, resource: str, namespace: str, name: str, obj: dict[str, Any], rv: int) -> None:
        body = json.dumps(obj, separators=(",", ":"))
        with self._engine.begin() as conn:
            stmt = insert(objects).values(
                resource=resource, namespace=namespace, name=name, rv=rv, body=body
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["resource", "namespace", "name"],
                    set_={"rv": rv, "body": body},
                )
            )
            self._set_rv(conn, rv)

    def delete(self, resource: str, namespace: str, name: str, rv: int) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                delete(objects).where(
                    objects.c.resource == resource,
                    objects.c.namespace == namespace,
                    objects.c.name == name,
                )
            )
            self._set_rv(conn, rv)

    def close(self) -> None:
        self._engine.dispose()
