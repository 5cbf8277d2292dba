"""KubeClient: a thin asyncio client for the Kubernetes REST API on raw JSON.

Design (style.md 4.6, after kopf's ``_cogs/clients``):

* one ``aiohttp.ClientSession`` per client; objects are plain dicts, never models;
* every non-watch call goes through :meth:`KubeClient._request`, the one retry
  loop: connection errors, timeouts, 5xx and 429 are retried with the back-offs
  of :class:`~kubeclient.settings.RetrySettings`, ``Retry-After`` is honoured,
  each attempt is logged as n/N and the last failure escalates;
* errors are mapped from the ``kind: Status`` body to :mod:`kubeclient.errors`
  and chained to the aiohttp error;
* :meth:`KubeClient.watch` is the lowest watch layer: one request with the
  server's ``timeoutSeconds``, an inactivity timeout rescheduled on every line,
  and an optional stopper event that ends it between reads. The list-then-watch
  and reconnect-forever layers are in :mod:`kubeclient.watching`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiohttp

from kubeclient import errors
from kubeclient.config import ClusterConfig, load_in_cluster, load_kubeconfig
from kubeclient.lines import LineAssembler
from kubeclient.resources import ResourceRef
from kubeclient.settings import ClientSettings

__all__ = ["KubeClient", "PatchType", "WatchEvent"]

log = logging.getLogger(__name__)

PatchType = Literal["merge", "strategic", "json"]

_PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}

_APPLY_CONTENT_TYPE = "application/apply-patch+yaml"

_TRANSIENT_CONNECTION_ERRORS = (aiohttp.ClientConnectionError, asyncio.TimeoutError, OSError)


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One event of a watch stream: ``ADDED``, ``MODIFIED``, ``DELETED`` or ``BOOKMARK``."""

    type: str
    object: dict[str, Any]


def _is_retryable_status(code: int) -> bool:
    return code == 429 or code >= 500


class KubeClient:
    """An async Kubernetes API client on raw JSON.

    Create it with :meth:`from_kubeconfig` or :meth:`in_cluster`, and
    :meth:`close` it when done (or use ``async with``).
    """

    def __init__(self, config: ClusterConfig, *, settings: ClientSettings | None = None) -> None:
        self.config = config
        self.settings = settings or ClientSettings()
        self._ssl = config.ssl_context()
        self._session: aiohttp.ClientSession | None = None

    # -- construction ---------------------------------------------------------

    @classmethod
    async def from_kubeconfig(
        cls,
        path: str | Path,
        *,
        context: str | None = None,
        settings: ClientSettings | None = None,
    ) -> KubeClient:
        """A client for the (current) context of a kubeconfig file."""
        return cls(load_kubeconfig(path, context=context), settings=settings)

    @classmethod
    async def in_cluster(cls, *, settings: ClientSettings | None = None) -> KubeClient:
        """A client for the pod's own service account."""
        return cls(load_in_cluster(), settings=settings)

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session; idempotent."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    @property
    def server(self) -> str:
        return self.config.server

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            auth = None
            if self.config.username is not None:
                auth = aiohttp.BasicAuth(self.config.username, self.config.password or "")
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl),
                auth=auth,
                headers={"Accept": "application/json", "User-Agent": "kubeedge-py/kubeclient"},
            )
        return self._session

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers: dict[str, str] = {}
        token = self.config.current_token(reload_interval=self.settings.token_reload_interval)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    # -- the request loop -------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        """Send one request, retrying transient failures; return the decoded JSON.

        Raises:
            ApiError: (a subclass of) the Status the server answered with.
            ApiConnectionError: the server could not be reached after all retries.
        """
        data: bytes | None = None
        if body is not None:
            if isinstance(body, bytes):
                data = body
            elif isinstance(body, str):
                data = body.encode()
            else:
                data = json.dumps(body).encode()
        backoffs = self.settings.retry.backoffs
        attempts = len(backoffs) + 1
        timeout = aiohttp.ClientTimeout(
            total=self.settings.request_timeout, connect=self.settings.connect_timeout
        )
        url = self.config.server + path
        for attempt in range(1, attempts + 1):
            delay: float | None = backoffs[attempt - 1] if attempt < attempts else None
            try:
                async with self._get_session().request(
                    method,
                    url,
                    params=params,
                    data=data,
                    headers=self._headers(content_type if data is not None else None),
                    timeout=timeout,
                    server_hostname=self.config.tls_server_name,
                ) as resp:
                    raw = await self._read_body(resp)
                    if resp.status < 400:
                        try:
                            return json.loads(raw) if raw else None
                        except ValueError as exc:
                            raise errors.ApiConnectionError(
                                f"{method} {path}: the server answered {resp.status} with a body "
                                f"that is not JSON: {raw[:200]!r}"
                            ) from exc
                    err = self._map_error(resp, raw)
                    if not _is_retryable_status(resp.status) or delay is None:
                        raise err
                    retry_after = _retry_after(resp.headers.get("Retry-After"))
                    if retry_after is not None:
                        delay = max(delay, min(retry_after, self.settings.retry.max_retry_after))
                    log.warning(
                        "%s %s: %s (attempt %d/%d), retrying in %.1fs",
                        method, path, err, attempt, attempts, delay,
                    )
            except errors.KubeClientError:
                raise
            except aiohttp.ClientConnectorCertificateError as exc:
                # A certificate that does not verify will not verify on retry.
                raise errors.ApiConnectionError(
                    f"{method} {self.config.server}{path}: TLS verification failed: {exc}"
                ) from exc
            except _TRANSIENT_CONNECTION_ERRORS as exc:
                if delay is None:
                    log.error(
                        "%s %s: %r (attempt %d/%d), giving up", method, path, exc, attempt, attempts
                    )
                    raise errors.ApiConnectionError(
                        f"{method} {self.config.server}{path} failed after {attempts} attempts: "
                        f"{exc!r}"
                    ) from exc
                log.warning(
                    "%s %s: %r (attempt %d/%d), retrying in %.1fs",
                    method, path, exc, attempt, attempts, delay,
                )
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _read_body(self, resp: aiohttp.ClientResponse) -> bytes:
        cap = self.settings.max_body
        length = resp.content_length
        if length is not None and length > cap:
            raise errors.ApiConnectionError(f"response body of {length} bytes exceeds {cap}")
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = await resp.content.readany()
            if not chunk:
                break
            size += len(chunk)
            if size > cap:
                raise errors.ApiConnectionError(f"response body exceeds {cap} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _map_error(resp: aiohttp.ClientResponse, raw: bytes) -> errors.ApiError:
        text = raw.decode(errors="replace")
        try:
            decoded: Any = json.loads(raw) if raw else None
        except ValueError:
            decoded = None
        err = errors.error_from_status(resp.status, decoded, text=text)
        # Chain the aiohttp view of the failure (style.md rule 15).
        err.__cause__ = aiohttp.ClientResponseError(
            resp.request_info, resp.history, status=resp.status, message=err.message
        )
        return err

    # -- CRUD -------------------------------------------------------------------

    async def get(
        self,
        ref: ResourceRef,
        name: str,
        namespace: str | None = None,
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """GET one object (or its subresource)."""
        path = ref.path(namespace=namespace, name=name, subresource=subresource)
        result: dict[str, Any] = await self._request("GET", path)
        return result

    async def list(
        self,
        ref: ResourceRef,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
        *,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """LIST a collection; returns the ``<Kind>List`` dict (``items``, ``metadata``).

        Items of a list carry no ``kind``/``apiVersion``; callers that forward
        them set those (see :func:`kubeclient.with_type`).
        """
        params: dict[str, str] = {}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        if limit:
            params["limit"] = str(limit)
        if continue_:
            params["continue"] = continue_
        if resource_version is not None:
            params["resourceVersion"] = resource_version
        result: dict[str, Any] = await self._request(
            "GET", ref.path(namespace=namespace), params=params
        )
        return result

    async def create(
        self,
        ref: ResourceRef,
        body: Any,
        namespace: str | None = None,
        *,
        name: str | None = None,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """POST a new object (or to a subresource such as ``serviceaccounts/x/token``)."""
        path = ref.path(namespace=namespace, name=name, subresource=subresource)
        result: dict[str, Any] = await self._request("POST", path, body=body)
        return result

    async def replace(
        self,
        ref: ResourceRef,
        name: str,
        body: Any,
        namespace: str | None = None,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """PUT an object; a stale ``metadata.resourceVersion`` raises :class:`Conflict`."""
        path = ref.path(namespace=namespace, name=name, subresource=subresource)
        result: dict[str, Any] = await self._request("PUT", path, body=body)
        return result

    async def patch(
        self,
        ref: ResourceRef,
        name: str,
        body: Any,
        namespace: str | None = None,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """PATCH an object. ``body`` may be a dict/list or already-encoded JSON text."""
        try:
            content_type = _PATCH_CONTENT_TYPES[patch_type]
        except KeyError:
            raise ValueError(f"unknown patch type {patch_type!r}") from None
        path = ref.path(namespace=namespace, name=name, subresource=subresource)
        result: dict[str, Any] = await self._request(
            "PATCH", path, body=body, content_type=content_type
        )
        return result

    async def apply(
        self,
        ref: ResourceRef,
        body: dict[str, Any],
        *,
        field_manager: str,
        force: bool = False,
        dry_run: bool = False,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Server-side apply: PATCH ``application/apply-patch+yaml`` with ``body``.

        ``body`` is the whole intended object (apiVersion, kind, metadata.name
        and the fields this manager owns). The API server creates it when it
        is missing, otherwise merges it and drops the fields ``field_manager``
        applied before but omits now.

        Args:
            force: take fields another manager owns instead of a 409 Conflict.
            dry_run: ``dryRun=All``: validate and answer, change nothing.

        Raises:
            Conflict: another manager owns a field with another value.
        """
        meta = body.get("metadata") or {}
        name = meta.get("name")
        if not name:
            raise ValueError("an applied object needs metadata.name")
        path = ref.path(
            namespace=meta.get("namespace") if ref.namespaced else None,
            name=str(name), subresource=subresource,
        )
        params = {"fieldManager": field_manager}
        if force:
            params["force"] = "true"
        if dry_run:
            params["dryRun"] = "All"
        # JSON is valid YAML, which is what the apply content type declares.
        result: dict[str, Any] = await self._request(
            "PATCH", path, params=params, body=body, content_type=_APPLY_CONTENT_TYPE
        )
        return result

    async def delete(
        self,
        ref: ResourceRef,
        name: str,
        namespace: str | None = None,
        body: Any = None,
    ) -> dict[str, Any] | None:
        """DELETE an object; ``body`` is an optional DeleteOptions dict.

        Returns the server's answer: the object (when finalizers keep it) or a Status.
        """
        path = ref.path(namespace=namespace, name=name)
        result: dict[str, Any] | None = await self._request("DELETE", path, body=body)
        return result

    # -- watch: the single-request layer -------------------------------------------

    async def watch(
        self,
        ref: ResourceRef,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        *,
        resource_version: str | None = None,
        timeout_seconds: int | None = None,
        inactivity_timeout: float | None = None,
        allow_bookmarks: bool = True,
        stopper: asyncio.Event | None = None,
    ) -> AsyncIterator[WatchEvent]:
        """One watch request; yields events until the server ends the stream.

        Args:
            resource_version: start after this version; ``None`` lets the
                server start from "now" (with synthetic ADDED events).
            timeout_seconds: the server's ``timeoutSeconds``; default from settings.
            inactivity_timeout: end with :class:`WatchError` when no line arrives
                for this long; default from settings, ``None`` in settings disables.
            stopper: when set, the stream ends quietly before the next read.

        Raises:
            Gone: the server answered 410 or sent an ERROR event with code 410.
            ApiError: any other error Status (as HTTP answer or ERROR event).
            ApiConnectionError: connection lost or refused.
            WatchError: inactivity timeout, or a line that is not a watch event.
        """
        ws = self.settings.watch
        params: dict[str, str] = {
            "watch": "true",
            "timeoutSeconds": str(timeout_seconds or ws.server_timeout),
        }
        if allow_bookmarks:
            params["allowWatchBookmarks"] = "true"
        if resource_version:
            params["resourceVersion"] = resource_version
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        idle = inactivity_timeout if inactivity_timeout is not None else ws.inactivity_timeout
        path = ref.path(namespace=namespace)
        timeout = aiohttp.ClientTimeout(
            total=None, connect=self.settings.connect_timeout, sock_read=None
        )
        try:
            async with self._get_session().get(
                self.config.server + path,
                params=params,
                headers=self._headers(),
                timeout=timeout,
                server_hostname=self.config.tls_server_name,
            ) as resp:
                if resp.status >= 400:
                    raise self._map_error(resp, await self._read_body(resp))
                assembler = LineAssembler(ws.max_line)
                while True:
                    chunk = await _read_chunk(resp, stopper, idle)
                    if chunk is None:  # stopper fired
                        return
                    if not chunk:  # server closed the stream (timeoutSeconds)
                        return
                    for line in assembler.feed(chunk):
                        if line.strip():
                            yield _decode_event(line)
        except errors.KubeClientError:
            raise
        except _TRANSIENT_CONNECTION_ERRORS as exc:
            raise errors.ApiConnectionError(f"watch {path}: {exc!r}") from exc

    # -- conveniences --------------------------------------------------------------

    async def create_token(
        self, namespace: str, service_account: str, token_request: dict[str, Any]
    ) -> dict[str, Any]:
        """TokenRequest for a service account (``serviceaccounts/<sa>/token``)."""
        from kubeclient.resources import SERVICEACCOUNTS

        body = dict(token_request)
        body.setdefault("apiVersion", "authentication.k8s.io/v1")
        body.setdefault("kind", "TokenRequest")
        return await self.create(
            SERVICEACCOUNTS, body, namespace, name=service_account, subresource="token"
        )


async def _read_chunk(
    resp: aiohttp.ClientResponse, stopper: asyncio.Event | None, idle: float | None
) -> bytes | None:
    """The next bytes of a stream; ``None`` if the stopper fired first."""
    if stopper is None:
        try:
            async with asyncio.timeout(idle):
                return await resp.content.readany()
        except TimeoutError as exc:
            raise errors.WatchError(f"watch inactive for {idle}s") from exc
    if stopper.is_set():
        return None
    read = asyncio.ensure_future(resp.content.readany())
    stop = asyncio.ensure_future(stopper.wait())
    try:
        done, _ = await asyncio.wait({read, stop}, timeout=idle, return_when="FIRST_COMPLETED")
    finally:
        stop.cancel()
        if not read.done():
            read.cancel()
    if read in done:
        return read.result()
    if stop in done:
        return None
    raise errors.WatchError(f"watch inactive for {idle}s")


def _decode_event(line: bytes) -> WatchEvent:
    try:
        event = json.loads(line)
        etype = event["type"]
        obj = event["object"]
    except (ValueError, KeyError, TypeError) as exc:
        raise errors.WatchError(f"not a watch event: {line[:200]!r}") from exc
    if etype == "ERROR":
        raise errors.error_from_status(int(obj.get("code") or 500), obj)
    if not isinstance(obj, dict):
        raise errors.WatchError(f"watch event object is not a mapping: {line[:200]!r}")
    return WatchEvent(str(etype), obj)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own back-off
