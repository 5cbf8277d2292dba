"""The one HTTP request shape certificate bootstrap needs, on the standard library.

Bootstrap and rotation make two kinds of request to cloudcore's HTTPS server
(``GET /ca.crt``, ``GET /edge.crt`` with the CSR as body) and read one small
DER certificate back. A general asyncio HTTP client library costs edgecore
about 9 MiB of resident memory for the rest of its life (its modules and C
extensions cannot be unloaded once a first bootstrap has imported them), so
these requests use the standard library's ``http.client`` instead, in a worker
thread: a request made a few times in a node's life does not need an asyncio
client, and ``http.client`` is a maintained HTTP/1.1 implementation (framing
by Content-Length, chunked or end of connection; status line, header line and
header count caps; header values refused if they contain CR or LF). We add the
body cap and an overall deadline. TLS is the caller's ``ssl.SSLContext``
(hostname checked when it says so).
"""

from __future__ import annotations

import asyncio
import http.client
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["BadResponse", "Reply", "get", "insecure_context"]


class BadResponse(ConnectionError):
    """The server's answer is not HTTP/1.x as we can read it (or too big)."""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    #: header names lowercased
    headers: dict[str, str]
    #: at most ``max_body + 1`` bytes: longer means the server sent too much
    body: bytes


def _check_headers(headers: Mapping[str, str]) -> None:
    # The node name and the token end up here: never let them start a new header.
    # http.client refuses CR/LF in values too; checking first gives one clear error
    # before any connection is made.
    for name, value in headers.items():
        if any(ch in name + value for ch in "\r\n\0") or ":" in name:
            raise ValueError(f"invalid HTTP header {name!r}")


def _exchange(
    *,
    scheme: str,
    host: str,
    port: int,
    target: str,
    headers: dict[str, str],
    body: bytes,
    ssl_context: ssl.SSLContext | None,
    timeout: float,
    max_body: int,
) -> Reply:
    conn: http.client.HTTPConnection
    if scheme == "https":
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ssl_context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        # GET with a body, as KubeEdge's edgecore sends the CSR.
        conn.request("GET", target, body=body or None, headers=headers)
        response = conn.getresponse()
        data = response.read(max_body + 1)
        if len(data) <= max_body and response.length:
            # read(n) returns short rather than raising when the peer closes early
            raise BadResponse(
                f"the body ended after {len(data)} bytes, {response.length} short of its length"
            )
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    except http.client.HTTPException as exc:
        raise BadResponse(f"the server's answer is not usable HTTP: {exc!r}") from exc
    except TimeoutError:
        raise
    except ConnectionResetError as exc:
        raise BadResponse("the connection closed in the middle of the response") from exc
    finally:
        conn.close()


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
    request_headers = dict(headers or {})
    _check_headers(request_headers)
    request_headers["Connection"] = "close"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # The socket timeout bounds each blocking step in the thread; the deadline
    # here bounds the whole exchange for the caller.
    async with asyncio.timeout(timeout):
        return await asyncio.to_thread(
            _exchange,
            scheme=parts.scheme,
            host=parts.hostname,
            port=port,
            target=target,
            headers=request_headers,
            body=body,
            ssl_context=ssl_context if parts.scheme == "https" else None,
            timeout=timeout,
            max_body=max_body,
        )


def insecure_context() -> ssl.SSLContext:
    """TLS without verification, for ``GET /ca.crt`` (the token's hash checks the CA)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
