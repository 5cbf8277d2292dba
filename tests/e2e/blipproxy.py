"""A loopback TCP proxy that can be cut and restored: a network blip on demand.

It sits between edgecore and cloudcore's WebSocket port and forwards bytes
unchanged (TLS passes through end to end: the proxy sees only ciphertext).
:meth:`BlipProxy.cut` closes both sides of every open connection and stops
listening, so new connections are refused, as when a link goes down;
:meth:`BlipProxy.restore` listens again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib

LOOPBACK = "127.0.0.1"


class BlipProxy:
    def __init__(self, target_port: int, *, host: str = LOOPBACK) -> None:
        self.host = host
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        #: connections accepted so far (a reconnect shows up here)
        self.accepted = 0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def is_up(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        """Listen (on a free port the first time, on the same port afterwards)."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def restore(self) -> None:
        await self.start()

    async def cut(self) -> None:
        """Refuse new connections and close every open one, both sides."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for w in list(self._writers):
            w.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if server is not None:
            # Closing the listener before the connections keeps wait_closed short.
            await server.wait_closed()

    async def close(self) -> None:
        await self.cut()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._server is None:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            writer.close()
            return
        self.accepted += 1
        self._writers.update((writer, up_writer))
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        try:
            await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        except asyncio.CancelledError:
            pass
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.close()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
