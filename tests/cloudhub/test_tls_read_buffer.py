"""cloudhub's shared TLS read buffer (tls.share_tls_read_buffer), over real TLS sockets."""

from __future__ import annotations

import asyncio
import os

from cloudcore.cloudhub.tls import server_ssl_context, share_tls_read_buffer
from fixtures.hubpki import Pki, wait_for


class _Echo(asyncio.Protocol):
    """Shares the read buffer when the handshake is done, then echoes every byte."""

    shared: list[bool] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.shared.append(share_tls_read_buffer(transport))

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def test_tls_connections_share_one_read_buffer_and_data_stays_intact(pki: Pki) -> None:
    loop = asyncio.get_running_loop()
    _Echo.shared = []
    ctx = server_ssl_context(pki.server, pki.ca.cert)
    server = await loop.create_server(_Echo, "127.0.0.1", 0, ssl=ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        client_ctx = pki.client_context("edge-buf")

        async def exchange() -> bytes:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost"
            )
            payload = os.urandom(300_000)  # many TLS records, interleaved with the others
            writer.write(payload)
            got = await asyncio.wait_for(reader.readexactly(len(payload)), 10)
            writer.close()
            await writer.wait_closed()
            return payload if got == payload else b""

        results = await asyncio.gather(*(exchange() for _ in range(5)))
        assert all(results)
        await wait_for(lambda: len(_Echo.shared) == 5, what="5 handshakes")
        # On Linux's selector loop the buffer is shared; elsewhere it must refuse, not break.
        assert _Echo.shared == [True] * 5
    finally:
        server.close()
        await server.wait_closed()


async def test_a_plain_tcp_transport_is_left_alone() -> None:
    loop = asyncio.get_running_loop()
    made: list[bool] = []

    class Plain(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            made.append(share_tls_read_buffer(transport))

    server = await loop.create_server(Plain, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        await wait_for(lambda: made, what="connection_made")
        assert made == [False]
        writer.close()
        await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()
