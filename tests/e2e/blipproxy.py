"""A loopback TCP proxy that can be cut and restored: a network blip on demand.

It sits between edgecore and cloudcore's WebSocket port and forwards bytes
unchanged (TLS passes through end to end: the proxy sees only ciphertext).
:meth:`BlipProxy.cut` closes both sides of every open connection and stops
listening, so new connections are refused, as when a link goes down;
:meth:`BlipProxy.restore` listens again on the same port.

:meth:`BlipProxy.pause` is the silent kind of blip: packets are dropped and
nobody is told. Open connections stay open but carry nothing (bytes already read
are held, as TCP would retransmit them) and new ones hang before reaching the
target; :meth:`BlipProxy.resume` lets everything flow again, so a peer that gave
up meanwhile sees its old connection fail only then, as with a real link.
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
        self._flowing = asyncio.Event()
        self._flowing.set()

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

    def pause(self) -> None:
        """Drop traffic silently: nothing is closed, nothing gets through."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    async def close(self) -> None:
        self.resume()
        await self.cut()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._server is None:
            writer.close()
            return
        await self._flowing.wait()
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
            await asyncio.gather(_pump(reader, up_writer, self._flowing),
                                 _pump(up_reader, writer, self._flowing))
        except (asyncio.CancelledError, ConnectionError, OSError):
            pass  # one side broke: close both, as a reset would
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.close()


async def _pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, flowing: asyncio.Event
) -> None:
    try:
        while True:
            await flowing.wait()
            data = await reader.read(65536)
            await flowing.wait()  # read during a pause: held until the link is back
            if not data:
                break
            writer.write(data)
            await writer.drain()
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
