"""certhttp: the HTTP/1.1 of certificate bootstrap, against servers that answer in every framing."""


from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from edgecore.edgehub import bootstrap, certhttp
from edgecore.edgehub.errors import BootstrapError, CloudUnreachable
from fixtures.minicloud import MiniCloud, Pki

CERT = bytes(range(256)) * 8  # 2 KiB, binary


class RawServer:
    """A TCP server that records each request and answers with canned bytes."""

    def __init__(self, answer: Callable[[bytes], bytes]) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/edge.crt"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        request = head + await reader.readexactly(length)
        self.requests.append(request)
        writer.write(self.answer(request))
        await writer.drain()
        writer.close()


@pytest.fixture
async def raw() -> AsyncIterator[Callable[[Callable[[bytes], bytes]], RawServer]]:
    servers: list[RawServer] = []

    def make(answer: Callable[[bytes], bytes]) -> RawServer:
        server = RawServer(answer)
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.stop()


def _chunked(data: bytes, size: int) -> bytes:
    out = b""
    for i in range(0, len(data), size):
        piece = data[i : i + size]
        out += f"{len(piece):x};ext=1\r\n".encode() + piece + b"\r\n"
    return out + b"0\r\nTrailer: x\r\n\r\n"


@pytest.mark.parametrize(
    "framing",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2048\r\n\r\n" + CERT,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + _chunked(CERT, 1000),
        b"HTTP/1.0 200 OK\r\n\r\n" + CERT,  # delimited by the end of the connection
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2048\r\n\r\n" + CERT,
    ],
    ids=["content-length", "chunked", "until-close", "after-100-continue"],
)
async def test_body_in_every_framing(
    raw: Callable[[Callable[[bytes], bytes]], RawServer], framing: bytes
) -> None:
    server = raw(lambda _req: framing)
    await server.start()
    reply = await certhttp.get(
        server.url,
        ssl_context=None,
        timeout=5,
        max_body=4096,
        headers={"NodeName": "edge-1"},
        body=b"csr-der",
    )
    assert (reply.status, reply.body) == (200, CERT)
    request = server.requests[0]
    assert request.startswith(b"GET /edge.crt HTTP/1.1\r\n")
    assert b"\r\nNodeName: edge-1\r\n" in request
    assert b"\r\nContent-Length: 7\r\n" in request
    assert request.endswith(b"\r\n\r\ncsr-der")


@pytest.mark.parametrize(
    "framing",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2048\r\n\r\n" + CERT,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + _chunked(CERT, 300),
        b"HTTP/1.1 200 OK\r\n\r\n" + CERT,
    ],
    ids=["content-length", "chunked", "until-close"],
)
async def test_a_body_over_the_cap_is_cut_one_byte_past_it(
    raw: Callable[[Callable[[bytes], bytes]], RawServer], framing: bytes
) -> None:
    server = raw(lambda _req: framing)
    await server.start()
    reply = await certhttp.get(server.url, ssl_context=None, timeout=5, max_body=1000)
    assert reply.body == CERT[:1001]


@pytest.mark.parametrize(
    "answer",
    [
        b"SMTP ready\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 200 + b"\r\n",
        b"",
    ],
    ids=["not-http", "short-body", "bad-chunk", "long-line", "many-headers", "empty"],
)
async def test_a_broken_answer_is_bad_response(
    raw: Callable[[Callable[[bytes], bytes]], RawServer], answer: bytes
) -> None:
    server = raw(lambda _req: answer)
    await server.start()
    with pytest.raises(certhttp.BadResponse):
        await certhttp.get(server.url, ssl_context=None, timeout=5, max_body=4096)


async def test_header_injection_is_refused_before_connecting() -> None:
    with pytest.raises(ValueError, match="invalid HTTP header"):
        await certhttp.get(
            "http://127.0.0.1:9/x",
            ssl_context=None,
            timeout=5,
            max_body=10,
            headers={"NodeName": "edge\r\nAuthorization: Bearer x"},
        )


async def test_a_silent_server_times_out() -> None:
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers; the client gives up first

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(TimeoutError):
            await certhttp.get(
                f"http://127.0.0.1:{port}/", ssl_context=None, timeout=0.3, max_body=1
            )
    finally:
        server.close()


async def test_fetch_ca_maps_an_http_error_to_cloud_unreachable(
    raw: Callable[[Callable[[bytes], bytes]], RawServer],
) -> None:
    server = raw(lambda _req: b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy")
    await server.start()
    with pytest.raises(CloudUnreachable, match="HTTP 503"):
        await bootstrap.fetch_ca(f"http://127.0.0.1:{server.port}", timeout=5)


async def test_a_server_certificate_of_another_ca_is_refused(
    minicloud: MiniCloud, tmp_path: Path
) -> None:
    other_ca = Pki.create().ca_pem
    _key, csr = bootstrap.make_key_and_csr("edge-1")
    with pytest.raises(BootstrapError, match="does not present a certificate of the fetched CA"):
        await bootstrap.request_certificate(
            minicloud.http_server, node="edge-1", csr_der=csr, ca_pem=other_ca, jwt="x.y.z"
        )
    assert minicloud.issued == []
