"""The one HTTP request shape certificate bootstrap needs, on asyncio streams.

Bootstrap and rotation make two kinds of request to cloudcore's HTTPS server
(``GET /ca.crt``, ``GET /edge.crt`` with the CSR as body) and read one small
DER certificate back. A general HTTP client library for that costs edgecore
about 9 MiB of resident memory for the rest of its life (its modules and C
extensions cannot be unloaded once a first bootstrap has imported them), so this
module speaks the little HTTP/1.1 it needs: one request per connection
(``Connection: close``), a response body framed by ``Content-Length``,
``chunked`` transfer coding or the end of the connection, every size capped.
TLS is the caller's ``ssl.SSLContext`` (hostname checked when it says so).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["BadResponse", "Reply", "get", "insecure_context"]

#: caps on what a server may send besides the body
MAX_LINE = 8 * 1024
MAX_HEADERS = 100


class BadResponse(ConnectionError):
    """The server's answer is not HTTP/1.x as we can read it (or too big)."""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: dict[str, str]
    #: at most ``max_body + 1`` bytes: longer means the server sent too much
    body: bytes


def _request(method: str, target: str, host: str, headers: Mapping[str, str], body: bytes) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Connection: close"]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    for name, value in headers.items():
        # the node name and the token end up here: never let them start a new header
        if any(ch in name + value for ch in "\r\n\0") or ":" in name:
            raise ValueError(f"invalid HTTP header {name!r}")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _line(reader: asyncio.StreamReader) -> bytes:
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        raise BadResponse("the connection closed in the middle of the response") from exc
    except asyncio.LimitOverrunError as exc:
        raise BadResponse("a response line is too long") from exc
    return line.rstrip(b"\r\n")


async def _head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    status_line = (await _line(reader)).decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise BadResponse(f"not an HTTP/1.x status line: {status_line[:100]!r}")
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        line = await _line(reader)
        if not line:
            return int(parts[1]), headers
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise BadResponse(f"malformed header line {line[:100]!r}")
        headers[name.strip().lower()] = value.strip()
    raise BadResponse(f"more than {MAX_HEADERS} headers")


async def _exactly(reader: asyncio.StreamReader, n: int) -> bytes:
    try:
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError as exc:
        raise BadResponse("the connection closed in the middle of the body") from exc


async def _body(reader: asyncio.StreamReader, headers: dict[str, str], cap: int) -> bytes:
    """The body, or its first ``cap`` bytes when it is longer."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        size_read = 0
        while size_read < cap:
            size_text = (await _line(reader)).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise BadResponse(f"bad chunk size {size_text[:20]!r}") from None
            if size == 0:
                break
            chunk = await _exactly(reader, min(size, cap - size_read))
            chunks.append(chunk)
            size_read += len(chunk)
            if size_read < cap:
                await _exactly(reader, 2)  # the CRLF after the chunk
        return b"".join(chunks)
    if "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise BadResponse("bad Content-Length") from None
        if length < 0:
            raise BadResponse("bad Content-Length")
        return await _exactly(reader, min(length, cap))
    data = b""
    while len(data) < cap:  # delimited by the end of the connection
        more = await reader.read(cap - len(data))
        if not more:
            break
        data += more
    return data


async def get(
    url: str,
    *,
    ssl_context: ssl.SSLContext | None,
    timeout: float,
    max_body: int,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
) -> Reply:
    """``GET url`` (with ``body``, as KubeEdge sends the CSR) and read the reply.

    Raises:
        TimeoutError: the whole exchange took longer than ``timeout``.
        ssl.SSLCertVerificationError: the server's certificate does not verify.
        BadResponse: the answer is not HTTP/1.x or breaks off (a ConnectionError).
        OSError: the connection failed.
        ValueError: an invalid URL or header.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    tls = ssl_context if parts.scheme == "https" else None
    port = parts.port or (443 if tls is not None else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = _request("GET", target, parts.netloc, headers or {}, body)
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(
            parts.hostname,
            port,
            ssl=tls,
            server_hostname=parts.hostname if tls is not None else None,
            limit=MAX_LINE,
        )
        try:
            writer.write(request)
            await writer.drain()
            status, reply_headers = await _head(reader)
            while 100 <= status < 200:  # informational answers precede the real one
                status, reply_headers = await _head(reader)
            data = await _body(reader, reply_headers, max_body + 1)
        finally:
            writer.close()
            # the answer is complete: do not let a slow TLS close hold it up
            with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()
    return Reply(status, reply_headers, data)


def insecure_context() -> ssl.SSLContext:
    """TLS without verification, for ``GET /ca.crt`` (the token's hash checks the CA)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
