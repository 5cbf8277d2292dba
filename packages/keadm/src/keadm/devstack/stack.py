"""The all-in-one development stack: API server, containerd, cloudcore, edgecore.

:class:`DevStack` wires the parts on one machine, the way ``keadm init`` and
``keadm join`` will on real ones:

1. **api** - the cluster of ``settings.kubeconfig`` when given (the demo passes
   ``$KUBECONFIG``, the tests ``$KUBEEDGE_TEST_KUBECONFIG``), else ``devkube serve``
   (HTTPS, admin token) as a child process; KubeEdge's CRDs are installed;
2. **containerd** - a private containerd (:mod:`edgecore.edged.devcontainerd`) with
   the busybox and pause images built from the host's busybox and imported
   (:mod:`edgecore.edged.localimage`): no registry is needed;
3. **cloudcore** - ``cloudcore.yaml`` from KubeEdge's defaults with every server on
   127.0.0.1 and free ports and every file inside the work dir, then
   ``python -m cloudcore --config``; ready when its ports answer and the join
   token is in Secret ``kubeedge/tokensecret``;
4. **edgecore** - ``edgecore.yaml`` with that token, cloudcore's addresses and the
   containerd endpoint, then ``python -m edgecore --config``; ready when its Node
   is Ready in the API server.

Every child logs to a file in the work dir (:attr:`DevStack.logs`). Waits are on
conditions with deadlines; when a child exits while the stack waits for it, the
wait stops at once with a :class:`StackError` naming the step and the log to read.
:meth:`DevStack.stop` stops what this stack started, in reverse order, and is safe
to call at any point (also after a failed start); ``async with`` does both.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

import kubeclient
from keadm.devstack import configs
from keadm.devstack.procs import ManagedProcess, python_env
from keadm.devstack.waiting import WaitTimeout, wait_for
from kecommon.config import CloudCoreConfig, EdgeCoreConfig

__all__ = [
    "STEPS",
    "DevStack",
    "StackError",
    "StackSettings",
    "free_tcp_port",
    "free_udp_port",
    "kubeconfig_from_env",
]

log = logging.getLogger(__name__)

KUBEEDGE_NAMESPACE = "kubeedge"
TOKEN_SECRET = "tokensecret"
TOKEN_KEY = "tokendata"
SANDBOX_IMAGE = "kubeedge/pause:3.6"

#: the steps of :meth:`DevStack.start`, in order: (method name, title)
STEPS: tuple[tuple[str, str], ...] = (
    ("start_api", "Kubernetes API"),
    ("start_containerd", "containerd"),
    ("start_cloudcore", "cloudcore"),
    ("start_edgecore", "edgecore"),
)


class StackError(RuntimeError):
    """A step of the stack failed.

    Attributes:
        step: the step's title (``cloudcore``).
        log_file: the log that tells why, when there is one.
    """

    def __init__(self, step: str, message: str, log_file: Path | None = None) -> None:
        text = f"{step}: {message}"
        if log_file is not None:
            text += f" (log: {log_file})"
        super().__init__(text)
        self.step = step
        self.reason = message
        self.log_file = log_file


def free_tcp_port(host: str = configs.LOOPBACK) -> int:
    """A TCP port the kernel says is free now (the child binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_udp_port(host: str = configs.LOOPBACK) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _default_node_name(work_dir: Path) -> str:
    # Unique per work dir, so stacks sharing a real cluster do not collide.
    tag = hashlib.sha256(str(work_dir.resolve()).encode()).hexdigest()[:6]
    return f"kubeedge-py-edge-{tag}"


@dataclass
class StackSettings:
    """What the stack looks like.

    Attributes:
        work_dir: every file of the stack goes here (configs, certificates,
            databases, containerd's root, logs). Created if missing.
        kubeconfig: use this cluster instead of starting devkube.
        node_name: the edge node's name (default: derived from ``work_dir``).
        heartbeat: edgehub keepalive period in seconds.
        node_status_update_frequency: edged's node status period (Go duration).
        step_timeout: deadline of each readiness wait.
        transport: how the edge reaches cloudhub, ``websocket`` or ``quic``
            (cloudcore always serves WebSocket, and QUIC too for ``quic``).
        edgecore_overrides: called on the edgecore config before it is written
            (tests use it to tune intervals).
        cloudcore_overrides: the same for the cloudcore config.
    """

    work_dir: Path
    kubeconfig: Path | None = None
    node_name: str | None = None
    heartbeat: int = 15
    node_status_update_frequency: str = "10s"
    step_timeout: float = 90.0
    transport: Literal["websocket", "quic"] = "websocket"
    edgecore_overrides: Callable[[EdgeCoreConfig], None] | None = None
    cloudcore_overrides: Callable[[CloudCoreConfig], None] | None = None


@dataclass
class DevStack:
    settings: StackSettings
    #: the cluster's kubeconfig (set by :meth:`start_api`)
    kubeconfig: Path | None = None
    kube: kubeclient.KubeClient | None = None
    containerd: Any = None  # edgecore.edged.devcontainerd.DevContainerd
    devkube: ManagedProcess | None = None
    cloudcore: ManagedProcess | None = None
    edgecore: ManagedProcess | None = None
    ports: configs.CloudPorts | None = None
    #: step title -> what it reported (URL, versions), for the demo's output
    facts: dict[str, str] = field(default_factory=dict)
    _node_registered: bool = field(default=False, init=False)
    _current_step: str = field(default="", init=False)

    # --- layout ---------------------------------------------------------------------

    @property
    def work_dir(self) -> Path:
        return self.settings.work_dir

    @property
    def node_name(self) -> str:
        return self.settings.node_name or _default_node_name(self.work_dir)

    @property
    def uses_devkube(self) -> bool:
        return self.settings.kubeconfig is None

    @property
    def cloud_paths(self) -> configs.CloudcorePaths:
        return configs.CloudcorePaths(self.work_dir / "cloudcore")

    @property
    def edge_paths(self) -> configs.EdgecorePaths:
        return configs.EdgecorePaths(self.work_dir / "edgecore")

    @property
    def devkube_dir(self) -> Path:
        return self.work_dir / "devkube"

    @property
    def containerd_dir(self) -> Path:
        return self.work_dir / "containerd"

    @property
    def logs(self) -> dict[str, Path]:
        """Step title -> its log file."""
        out = {
            "containerd": self.containerd_dir / "containerd.log",
            "cloudcore": self.cloud_paths.log,
            "edgecore": self.edge_paths.log,
        }
        if self.uses_devkube:
            out = {"Kubernetes API": self.devkube_dir / "devkube.log", **out}
        return out

    @property
    def runtime_endpoint(self) -> str:
        if self.containerd is None:
            raise RuntimeError("containerd is not started")
        return str(self.containerd.endpoint)

    def client(self) -> kubeclient.KubeClient:
        if self.kube is None:
            raise RuntimeError("the API step has not run")
        return self.kube

    # --- start ----------------------------------------------------------------------

    async def start(
        self, on_step: Callable[[str, str, float], Awaitable[None] | None] | None = None
    ) -> None:
        """Run every step of :data:`STEPS`; ``on_step(title, fact, seconds)`` after each."""
        loop = asyncio.get_running_loop()
        for method, title in STEPS:
            t0 = loop.time()
            await getattr(self, method)()
            if on_step is not None:
                res = on_step(title, self.facts.get(title, ""), loop.time() - t0)
                if res is not None:
                    await res

    async def start_api(self) -> None:
        step = "Kubernetes API"
        self._current_step = step
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if self.settings.kubeconfig is not None:
            self.kubeconfig = self.settings.kubeconfig
            if not self.kubeconfig.is_file():
                raise StackError(step, f"kubeconfig {self.kubeconfig} does not exist")
        else:
            self.kubeconfig = await self._start_devkube()
        try:
            self.kube = await kubeclient.KubeClient.from_kubeconfig(self.kubeconfig)
        except kubeclient.KubeClientError as exc:
            raise StackError(step, f"cannot use {self.kubeconfig}: {exc}") from exc
        try:
            await wait_for(
                self._api_version, what="the API server to answer", timeout=30.0,
                guard=self._guard,
            )
        except WaitTimeout as exc:
            raise StackError(step, str(exc), self.logs.get(step)) from exc
        await self._install_crds(step)
        where = "devkube" if self.uses_devkube else "cluster"
        self.facts[step] = f"{where} at {self.kube.server}"

    async def _start_devkube(self) -> Path:
        kubeconfig = self.devkube_dir / "kubeconfig"
        self.devkube_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            kubeconfig.unlink()  # a stale one would point at a dead server
        self.devkube = ManagedProcess(
            "devkube",
            [
                sys.executable, "-m", "devkube", "serve",
                "--address", configs.LOOPBACK, "--port", "0", "--tls",
                "--kubeconfig", str(kubeconfig),
            ],
            self.devkube_dir / "devkube.log",
        )
        await self.devkube.start()

        async def written() -> Path | None:
            # devkube writes the kubeconfig once it listens; a half-written file
            # does not parse yet.
            try:
                data = yaml.safe_load(kubeconfig.read_text())
            except (OSError, yaml.YAMLError):
                return None
            return kubeconfig if isinstance(data, dict) and data.get("clusters") else None

        try:
            return await wait_for(
                written, what="devkube to write its kubeconfig", timeout=30.0, guard=self._guard
            )
        except WaitTimeout as exc:
            raise StackError("Kubernetes API", str(exc), self.devkube.log_path) from exc

    async def _api_version(self) -> str | None:
        assert self.kube is not None
        try:
            await self.kube.list(kubeclient.NAMESPACES, limit=1)
        except (kubeclient.ApiConnectionError, kubeclient.ServerError):
            return None
        except kubeclient.KubeClientError as exc:
            raise StackError("Kubernetes API", f"the API server refused us: {exc}") from exc
        return "ready"

    async def _install_crds(self, step: str) -> None:
        # keadm init installs KubeEdge's CRDs before cloudcore starts; so do we.
        from cloudcore.crds import install_crds

        try:
            await install_crds(self.client())
        except (kubeclient.KubeClientError, OSError, TimeoutError) as exc:
            raise StackError(step, f"cannot install KubeEdge's CRDs: {exc}") from exc

    async def start_containerd(self) -> None:
        step = "containerd"
        self._current_step = step
        from edgecore.edged.devcontainerd import (
            ContainerdStartError,
            DevContainerd,
            DevContainerdSettings,
        )
        from edgecore.edged.localimage import ImageImportError

        ctrd = DevContainerd(
            self.containerd_dir, settings=DevContainerdSettings(sandbox_image=SANDBOX_IMAGE)
        )
        try:
            await ctrd.start()
        except ContainerdStartError as exc:
            raise StackError(step, str(exc), ctrd.log_path) from exc
        self.containerd = ctrd
        try:
            images = await ctrd.import_local_images()
        except ImageImportError as exc:
            raise StackError(step, f"cannot import the local images: {exc}", ctrd.log_path) from exc
        self.facts[step] = f"{ctrd.endpoint}, {len(images)} local images"

    def _pick_ports(self) -> configs.CloudPorts:
        if self.ports is None:
            self.ports = configs.CloudPorts(
                websocket=free_tcp_port(), https=free_tcp_port(),
                quic=free_udp_port(), monitor=free_tcp_port(),
            )
        return self.ports

    def write_cloudcore_config(self) -> Path:
        assert self.kubeconfig is not None
        paths = self.cloud_paths
        paths.base.mkdir(parents=True, exist_ok=True)
        cfg = configs.cloudcore_config(
            kubeconfig=self.kubeconfig.resolve(), ports=self._pick_ports(), paths=paths,
            quic=self.settings.transport == "quic",
        )
        if self.settings.cloudcore_overrides is not None:
            self.settings.cloudcore_overrides(cfg)
        paths.config.write_text(configs.render_cloudcore(cfg))
        return paths.config

    async def start_cloudcore(self) -> None:
        """Start (or start again, same config and ports) cloudcore and wait until it serves."""
        step = "cloudcore"
        self._current_step = step
        paths = self.cloud_paths
        if not paths.config.exists():
            self.write_cloudcore_config()
        ports = self._pick_ports()
        self.cloudcore = ManagedProcess(
            "cloudcore",
            [sys.executable, "-m", "cloudcore", "--config", str(paths.config)],
            paths.log,
        )
        await self.cloudcore.start()
        try:
            await wait_for(
                self._cloudcore_listening, what="cloudcore's websocket and https ports",
                timeout=self.settings.step_timeout, guard=self._guard,
            )
            await wait_for(
                self.join_token,
                what=f"the join token in Secret {KUBEEDGE_NAMESPACE}/{TOKEN_SECRET}",
                timeout=self.settings.step_timeout, guard=self._guard,
            )
        except WaitTimeout as exc:
            raise StackError(step, str(exc), paths.log) from exc
        quic = ""
        if self.settings.transport == "quic":
            quic = f"quic {configs.LOOPBACK}:{ports.quic}, "
        self.facts[step] = (
            f"websocket {configs.LOOPBACK}:{ports.websocket}, {quic}"
            f"https {configs.LOOPBACK}:{ports.https}, pid {self.cloudcore.pid}"
        )

    async def _cloudcore_listening(self) -> bool:
        ports = self._pick_ports()
        for port in (ports.websocket, ports.https):
            try:
                _, writer = await asyncio.open_connection(configs.LOOPBACK, port)
            except OSError:
                return False
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        return True

    async def join_token(self) -> str | None:
        """The current join token from ``kubeedge/tokensecret``, or None."""
        try:
            secret = await self.client().get(
                kubeclient.SECRETS, TOKEN_SECRET, namespace=KUBEEDGE_NAMESPACE
            )
        except kubeclient.NotFound:
            return None
        raw = (secret.get("data") or {}).get(TOKEN_KEY)
        if not raw:
            return None
        return base64.b64decode(raw).decode().strip() or None

    async def write_edgecore_config(self) -> Path:
        step = "edgecore"
        token = await self.join_token()
        if not token:
            raise StackError(step, f"no join token in Secret {KUBEEDGE_NAMESPACE}/{TOKEN_SECRET}")
        paths = self.edge_paths
        paths.base.mkdir(parents=True, exist_ok=True)
        cfg = configs.edgecore_config(
            node_name=self.node_name,
            token=token,
            ports=self._pick_ports(),
            paths=paths,
            runtime_endpoint=self.runtime_endpoint,
            sandbox_image=SANDBOX_IMAGE,
            heartbeat=self.settings.heartbeat,
            node_status_update_frequency=self.settings.node_status_update_frequency,
            quic=self.settings.transport == "quic",
        )
        if self.settings.edgecore_overrides is not None:
            self.settings.edgecore_overrides(cfg)
        paths.config.write_text(configs.render_edgecore(cfg))
        paths.config.chmod(0o600)  # it holds the join token until edgecore drops it
        return paths.config

    async def start_edgecore(self, *, wait_ready: bool = True) -> None:
        """Start (or start again, keeping its config and certificates) edgecore.

        Args:
            wait_ready: wait until the Node is Ready in the API server (needs cloudcore).
        """
        step = "edgecore"
        self._current_step = step
        paths = self.edge_paths
        if not paths.config.exists():
            await self.write_edgecore_config()
        self.edgecore = ManagedProcess(
            "edgecore",
            [sys.executable, "-m", "edgecore", "--config", str(paths.config)],
            paths.log,
            env=python_env(),
        )
        await self.edgecore.start()
        self._node_registered = True
        if wait_ready:
            await self.wait_node_ready()
            self.facts[step] = f"node {self.node_name} Ready, pid {self.edgecore.pid}"

    # --- conditions -----------------------------------------------------------------

    def _guard(self) -> None:
        """Stop a wait at once when a child it depends on has exited."""
        for proc in (self.devkube, self.cloudcore, self.edgecore):
            if proc is not None and proc._proc is not None and proc.returncode is not None:
                raise StackError(
                    proc.name,
                    f"{proc.name} exited with code {proc.returncode}; last lines of its log:\n"
                    + proc.log_tail(),
                    proc.log_path,
                )

    async def node(self) -> dict[str, Any] | None:
        try:
            return await self.client().get(kubeclient.NODES, self.node_name)
        except kubeclient.NotFound:
            return None

    @staticmethod
    def ready_condition(node: dict[str, Any]) -> dict[str, Any] | None:
        for cond in (node.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "Ready":
                return dict(cond)
        return None

    async def wait_node_ready(
        self, *, timeout: float | None = None, heartbeat_after: dt.datetime | None = None
    ) -> dict[str, Any]:
        """Wait until the Node is Ready (with a heartbeat later than ``heartbeat_after``)."""
        last: dict[str, Any] = {}

        async def ready() -> dict[str, Any] | None:
            node = await self.node()
            if node is None:
                last["state"] = "no Node object yet"
                return None
            cond = self.ready_condition(node)
            last["state"] = f"Ready condition {cond}"
            if cond is None or cond.get("status") != "True":
                return None
            if heartbeat_after is not None:
                beat = _parse_time(cond.get("lastHeartbeatTime"))
                if beat is None or beat <= heartbeat_after:
                    return None
            return node

        try:
            return await wait_for(
                ready,
                what=f"node {self.node_name} to be Ready",
                timeout=timeout or self.settings.step_timeout,
                interval=0.5,
                describe=lambda: str(last.get("state", "")),
                guard=self._guard,
            )
        except WaitTimeout as exc:
            raise StackError("edgecore", str(exc), self.edge_paths.log) from exc

    async def wait_pod(
        self,
        namespace: str,
        name: str,
        predicate: Callable[[dict[str, Any]], bool],
        *,
        what: str,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Wait until the pod in the API server satisfies ``predicate``."""
        last: dict[str, Any] = {}

        async def check() -> dict[str, Any] | None:
            try:
                pod = await self.client().get(kubeclient.PODS, name, namespace=namespace)
            except kubeclient.NotFound:
                last["status"] = "not found"
                return None
            last["status"] = pod.get("status")
            return pod if predicate(pod) else None

        try:
            return await wait_for(
                check,
                what=f"pod {namespace}/{name} {what}",
                timeout=timeout or self.settings.step_timeout,
                interval=0.25,
                describe=lambda: str(last.get("status", "")),
                guard=self._guard,
            )
        except WaitTimeout as exc:
            raise StackError("pod", str(exc), self.edge_paths.log) from exc

    async def wait_pod_gone(
        self, namespace: str, name: str, *, timeout: float | None = None
    ) -> None:
        async def gone() -> bool:
            try:
                await self.client().get(kubeclient.PODS, name, namespace=namespace)
            except kubeclient.NotFound:
                return True
            return False

        try:
            await wait_for(
                gone, what=f"pod {namespace}/{name} to be deleted",
                timeout=timeout or self.settings.step_timeout, guard=self._guard,
            )
        except WaitTimeout as exc:
            raise StackError("pod", str(exc), self.edge_paths.log) from exc

    # --- stop -----------------------------------------------------------------------

    async def stop_edgecore(self) -> None:
        if self.edgecore is not None:
            await self.edgecore.stop()
            self.edgecore = None

    async def restart_edgecore(self, *, wait_ready: bool = False) -> None:
        await self.stop_edgecore()
        await self.start_edgecore(wait_ready=wait_ready)

    async def stop_cloudcore(self) -> None:
        if self.cloudcore is not None:
            await self.cloudcore.stop()
            self.cloudcore = None

    async def stop(self) -> None:
        """Stop what this stack started, in reverse order; never raises."""
        errors: list[str] = []

        async def attempt(what: str, coro: Awaitable[Any]) -> None:
            try:
                await coro
            except Exception as exc:  # keep stopping the rest
                log.warning("stopping %s failed: %s", what, exc)
                errors.append(f"{what}: {exc}")

        await attempt("edgecore", self.stop_edgecore())
        if self._node_registered and not self.uses_devkube and self.kube is not None:
            await attempt("node", self._delete_node())
        await attempt("cloudcore", self.stop_cloudcore())
        if self.containerd is not None:
            ctrd, self.containerd = self.containerd, None
            await attempt("containerd", ctrd.stop())
        if self.kube is not None:
            kube, self.kube = self.kube, None
            await attempt("kubeclient", kube.close())
        if self.devkube is not None:
            dk, self.devkube = self.devkube, None
            await attempt("devkube", dk.stop())
        if errors:
            log.warning("the stack stopped with errors: %s", "; ".join(errors))

    async def _delete_node(self) -> None:
        # On a shared cluster, leave no Node behind for an edge that is gone.
        with contextlib.suppress(kubeclient.NotFound):
            await self.client().delete(kubeclient.NODES, self.node_name)

    async def __aenter__(self) -> DevStack:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def kubeconfig_from_env(var: str = "KUBECONFIG") -> Path | None:
    """The first existing file of ``$KUBECONFIG`` (a path list), or None when unset."""
    value = os.environ.get(var, "")
    if not value:
        return None
    for part in value.split(os.pathsep):
        if part and Path(part).is_file():
            return Path(part)
    raise StackError("Kubernetes API", f"${var} is set but names no existing file: {value}")
