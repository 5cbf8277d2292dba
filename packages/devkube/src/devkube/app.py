"""devkube in-process: ``async with DevKube() as kube:`` serves the API on a local port
and gives its URL, admin token and a kubeconfig; ``DevKubeThread`` does the same on a
background thread for synchronous callers (blocking clients such as ``kubectl`` or the
official Python client then cannot stall the server)."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import ssl
import tempfile
import threading
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import yaml
from aiohttp import web

from devkube.api import Api
from devkube.persist import SqliteBackend
from devkube.resources import Registry
from devkube.server import (
    DEFAULT_BOOKMARK_INTERVAL,
    MAX_BODY_BYTES,
    ServerConfig,
    make_app,
)
from devkube.store import DEFAULT_HISTORY, Store
from devkube.tlsutil import make_server_cert
from devkube.tokens import TokenIssuer

T = TypeVar("T")

# Seconds stop() waits for requests in flight before cancelling them.
SHUTDOWN_TIMEOUT = 5.0


def kubeconfig_dict(server: str, token: str, ca_file: Path | None = None) -> dict[str, Any]:
    cluster: dict[str, Any] = {"server": server}
    if ca_file is not None:
        import base64

        cluster["certificate-authority-data"] = base64.b64encode(ca_file.read_bytes()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "devkube", "cluster": cluster}],
        "users": [{"name": "devkube-admin", "user": {"token": token}}],
        "contexts": [
            {"name": "devkube",
             "context": {"cluster": "devkube", "user": "devkube-admin", "namespace": "default"}}
        ],
        "current-context": "devkube",
        "preferences": {},
    }


class DevKube:
    """An embedded API server.

    Args:
        address: the address to bind.
        port: the port (0 picks a free one).
        kubeconfig: where to write the admin kubeconfig (default: a temporary file).
        data_dir: persist objects, the RV counter, the admin token and the token
            signing key there (SQLite); None keeps everything in memory.
        tls: serve HTTPS with a self-signed CA (written to data_dir or a temp dir), the
            default, as kube-apiserver does; False serves plain HTTP (kubectl then sends
            no bearer token).
        token: the admin bearer token (default: random, or the one kept in data_dir).
        bookmark_interval: seconds between BOOKMARK events on watches that allow them.
        history: watch events kept for resuming before older RVs answer 410.
        max_body: request body cap in bytes (413 above it).
    """

    def __init__(
        self,
        *,
        address: str = "127.0.0.1",
        port: int = 0,
        kubeconfig: Path | None = None,
        data_dir: Path | None = None,
        tls: bool = True,
        token: str | None = None,
        bookmark_interval: float = DEFAULT_BOOKMARK_INTERVAL,
        history: int = DEFAULT_HISTORY,
        max_body: int = MAX_BODY_BYTES,
    ) -> None:
        self.address = address
        self.port = port
        self.data_dir = data_dir
        self.tls = tls
        self._tmp: Path | None = None
        self._kubeconfig = kubeconfig
        self._token = token
        self._bookmark_interval = bookmark_interval
        self._history = history
        self._max_body = max_body
        self._runner: web.AppRunner | None = None
        self.api: Api | None = None
        self.ca_file: Path | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{scheme}://{host}:{self.port}"

    @property
    def token(self) -> str:
        assert self._token is not None, "not started"
        return self._token

    @property
    def kubeconfig(self) -> Path:
        assert self._kubeconfig is not None, "not started"
        return self._kubeconfig

    def _workdir(self) -> Path:
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            return self.data_dir
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="devkube-"))
        return self._tmp

    async def start(self) -> None:
        backend = None
        key_file = None
        if self.data_dir is not None:
            work = self._workdir()
            backend = SqliteBackend(work / "devkube.sqlite")
            key_file = work / "sa-signing.key"
            token_file = work / "admin-token"
            if self._token is None and token_file.exists():
                self._token = token_file.read_text().strip()
            if self._token is None:
                self._token = secrets.token_urlsafe(32)
            token_file.write_text(self._token)
            token_file.chmod(0o600)
        if self._token is None:
            self._token = secrets.token_urlsafe(32)
        store = Store(backend=backend, history=self._history)
        self.api = Api(store, Registry(), TokenIssuer(key_file))
        ssl_ctx = None
        if self.tls:
            ca, crt, key = make_server_cert(self._workdir() / "tls", [self.address])
            self.ca_file = ca
            ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_ctx.load_cert_chain(crt, key)
        cfg = ServerConfig(
            admin_token=self._token,
            max_body=self._max_body,
            bookmark_interval=self._bookmark_interval,
        )
        app = make_app(self.api, cfg)
        # Open watches are ended by stop() before cleanup, so the runner's graceful
        # shutdown only waits for ordinary requests.
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=SHUTDOWN_TIMEOUT
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.address, self.port, ssl_context=ssl_ctx)
        await site.start()
        server = site._server
        if self.port == 0 and server is not None:
            sockets = getattr(server, "sockets", None) or []
            self.port = sockets[0].getsockname()[1]
        cfg.address = f"{self.address}:{self.port}"
        if self._kubeconfig is None:
            self._kubeconfig = self._workdir() / "kubeconfig"
        self._kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed: whoever polls for the file never reads half of it.
        partial = self._kubeconfig.with_name(self._kubeconfig.name + ".partial")
        partial.write_text(
            yaml.safe_dump(kubeconfig_dict(self.url, self._token, self.ca_file), sort_keys=False)
        )
        partial.chmod(0o600)
        partial.replace(self._kubeconfig)

    async def stop(self) -> None:
        if self.api is not None:
            # End open watches first so the runner's graceful shutdown does not wait on them.
            self.api.store.close_watchers()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.api is not None:
            self.api.store.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def compact(self, resource_version: int | None = None) -> int:
        """Drop the watch history up to ``resource_version`` (default: all of it), so
        watches from older resourceVersions get 410 Expired."""
        assert self.api is not None, "not started"
        return self.api.compact(resource_version)

    async def __aenter__(self) -> DevKube:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class DevKubeThread:
    """DevKube on its own event loop in a daemon thread (``with DevKubeThread() as k``)."""

    def __init__(self, **kwargs: Any) -> None:
        self.kube = DevKube(**kwargs)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="devkube", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self) -> DevKube:
        self._thread.start()
        self.call(self.kube.start())
        return self.kube

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        try:
            self.call(self.kube.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            if not self._thread.is_alive():  # a loop still running cannot be closed
                self._loop.close()

    def compact(self, resource_version: int | None = None) -> int:
        async def _compact() -> int:
            return self.kube.compact(resource_version)

        return self.call(_compact())

    def __enter__(self) -> DevKube:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
