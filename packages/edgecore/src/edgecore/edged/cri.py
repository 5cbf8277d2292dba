"""An async CRI v1 client on ``grpc.aio``.

It is the only module of edged that imports grpc. Every call has a deadline
taken from :class:`CRITimeouts` (kubelet's ``runtimeRequestTimeout`` is 2
minutes; image pulls get their own, longer, deadline), and every gRPC error is
turned into :mod:`edgecore.edged.errors` exceptions with the cause chained.

The messages are the ``cri_api`` package's ``runtime.v1`` protobufs
(``cri_api.v1.api_pb2``); they are newer than containerd 1.6's copy of the
API, which is harmless: protobuf ignores fields the peer does not know.

Mirrors kubelet's ``internal/cri/remote`` (remote_runtime.go, remote_image.go).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
from cri_api.v1 import api_pb2 as pb
from cri_api.v1 import api_pb2_grpc as pb_grpc

from edgecore.edged import errors

__all__ = ["CRIClient", "CRITimeouts", "pb"]

log = logging.getLogger(__name__)

# CRI messages can be large (ListContainers on a busy node); kubelet allows 16 MiB.
MAX_MESSAGE_SIZE = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class CRITimeouts:
    """Deadlines of CRI calls, in seconds (``None``: no deadline).

    Attributes:
        request: every ordinary call (kubelet ``runtimeRequestTimeout``, 2 min).
        connect: how long :meth:`CRIClient.version` waits for the socket to answer.
        pull: an image pull (kubelet has none; a bounded one keeps a worker from
            hanging forever on a dead registry).
        exec_extra: added to an ExecSync's own timeout (probes) as the gRPC deadline.
        stop_extra: added to a StopContainer grace period as the gRPC deadline.
    """

    request: float | None = 120.0
    connect: float | None = 10.0
    pull: float | None = 600.0
    exec_extra: float = 10.0
    stop_extra: float = 30.0


def _deadline(base: float | None, extra: float = 0.0) -> float | None:
    return None if base is None else base + extra


_NOT_FOUND_HINTS = ("not found", "does not exist", "no such")


def _wrap(method: str, exc: grpc.aio.AioRpcError) -> errors.CRIError:
    code = exc.code()
    details = exc.details() or ""
    name = code.name if code is not None else "UNKNOWN"
    if code == grpc.StatusCode.UNAVAILABLE:
        return errors.CRIUnavailable(method, name, details)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return errors.CRITimeout(method, name, details)
    # containerd 1.6 often reports a missing object as UNKNOWN with "not found"
    # in the text rather than NOT_FOUND; both mean the same to a caller.
    if code == grpc.StatusCode.NOT_FOUND or any(h in details.lower() for h in _NOT_FOUND_HINTS):
        return errors.CRINotFound(method, name, details)
    return errors.CRIError(method, name, details)


def normalize_endpoint(endpoint: str) -> str:
    """Turn ``unix:///run/x.sock`` or a bare path into the target grpc expects."""
    if endpoint.startswith("unix://"):
        return "unix:" + endpoint[len("unix://") :]
    if endpoint.startswith("/"):
        return "unix:" + endpoint
    return endpoint


class CRIClient:
    """RuntimeService and ImageService over one channel.

    Args:
        endpoint: ``unix:///path/to/containerd.sock`` (KubeEdge's
            ``containerRuntimeEndpoint``) or a socket path.
        timeouts: the named deadlines.
    """

    def __init__(self, endpoint: str, *, timeouts: CRITimeouts | None = None) -> None:
        self.endpoint = endpoint
        self.timeouts = timeouts or CRITimeouts()
        self._channel = grpc.aio.insecure_channel(
            normalize_endpoint(endpoint),
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_SIZE),
                ("grpc.max_send_message_length", MAX_MESSAGE_SIZE),
            ],
        )
        self._runtime: Any = pb_grpc.RuntimeServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._images: Any = pb_grpc.ImageServiceStub(self._channel)  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> CRIClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, stub: Any, method: str, request: Any, timeout: float | None) -> Any:
        try:
            return await getattr(stub, method)(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise _wrap(method, exc) from exc

    async def _rt(self, method: str, request: Any, timeout: float | None = None) -> Any:
        t = self.timeouts.request if timeout is None else timeout
        return await self._call(self._runtime, method, request, t)

    # --- runtime -----------------------------------------------------------------

    async def version(self, *, timeout: float | None = None) -> Any:
        """``Version``; waits for the socket up to ``timeouts.connect``."""
        t = self.timeouts.connect if timeout is None else timeout
        try:
            return await self._runtime.Version(
                pb.VersionRequest(version="v1"), timeout=t, wait_for_ready=True
            )
        except grpc.aio.AioRpcError as exc:
            raise _wrap("Version", exc) from exc

    async def status(self) -> Any:
        return await self._rt("Status", pb.StatusRequest(verbose=False))

    async def run_pod_sandbox(self, config: Any, runtime_handler: str = "") -> str:
        resp = await self._rt(
            "RunPodSandbox", pb.RunPodSandboxRequest(config=config, runtime_handler=runtime_handler)
        )
        return str(resp.pod_sandbox_id)

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        await self._rt("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        await self._rt("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))

    async def pod_sandbox_status(self, sandbox_id: str) -> Any:
        resp = await self._rt(
            "PodSandboxStatus", pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id)
        )
        return resp.status

    async def list_pod_sandbox(self, labels: dict[str, str] | None = None) -> list[Any]:
        flt = pb.PodSandboxFilter(label_selector=labels or {})
        resp = await self._rt("ListPodSandbox", pb.ListPodSandboxRequest(filter=flt))
        return list(resp.items)

    async def create_container(self, sandbox_id: str, config: Any, sandbox_config: Any) -> str:
        resp = await self._rt(
            "CreateContainer",
            pb.CreateContainerRequest(
                pod_sandbox_id=sandbox_id, config=config, sandbox_config=sandbox_config
            ),
        )
        return str(resp.container_id)

    async def start_container(self, container_id: str) -> None:
        await self._rt("StartContainer", pb.StartContainerRequest(container_id=container_id))

    async def stop_container(self, container_id: str, grace_seconds: int) -> None:
        """Stop with SIGTERM, then SIGKILL after ``grace_seconds`` (done by the runtime)."""
        await self._rt(
            "StopContainer",
            pb.StopContainerRequest(container_id=container_id, timeout=grace_seconds),
            timeout=_deadline(self.timeouts.request, grace_seconds + self.timeouts.stop_extra),
        )

    async def remove_container(self, container_id: str) -> None:
        await self._rt("RemoveContainer", pb.RemoveContainerRequest(container_id=container_id))

    async def list_containers(
        self, labels: dict[str, str] | None = None, sandbox_id: str = ""
    ) -> list[Any]:
        flt = pb.ContainerFilter(label_selector=labels or {}, pod_sandbox_id=sandbox_id)
        resp = await self._rt("ListContainers", pb.ListContainersRequest(filter=flt))
        return list(resp.containers)

    async def container_status(self, container_id: str) -> Any:
        resp = await self._rt(
            "ContainerStatus", pb.ContainerStatusRequest(container_id=container_id)
        )
        return resp.status

    async def exec_sync(self, container_id: str, cmd: list[str], timeout: int) -> tuple[int, bytes]:
        """Run ``cmd`` in the container; returns (exit code, stdout + stderr)."""
        resp = await self._rt(
            "ExecSync",
            pb.ExecSyncRequest(container_id=container_id, cmd=cmd, timeout=timeout),
            timeout=float(timeout) + self.timeouts.exec_extra,
        )
        return int(resp.exit_code), bytes(resp.stdout) + bytes(resp.stderr)

    # --- images ------------------------------------------------------------------

    async def image_status(self, image: str) -> Any | None:
        """The image, or ``None`` when it is not present."""
        resp = await self._call(
            self._images,
            "ImageStatus",
            pb.ImageStatusRequest(image=pb.ImageSpec(image=image)),
            self.timeouts.request,
        )
        return resp.image if resp.HasField("image") else None

    async def pull_image(self, image: str, sandbox_config: Any | None = None) -> str:
        """Pull ``image``; returns the image reference (digest) the runtime reports."""
        req = pb.PullImageRequest(image=pb.ImageSpec(image=image))
        if sandbox_config is not None:
            req.sandbox_config.CopyFrom(sandbox_config)
        resp = await self._call(self._images, "PullImage", req, self.timeouts.pull)
        return str(resp.image_ref)

    async def list_images(self) -> list[Any]:
        resp = await self._call(
            self._images, "ListImages", pb.ListImagesRequest(), self.timeouts.request
        )
        return list(resp.images)
