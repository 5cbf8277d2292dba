"""The Node: registration, status reports and the Lease heartbeat.

Mirrors kubelet's ``kubelet_node_status.go`` (initialNode, registerWithAPIServer,
syncNodeStatus) and ``nodelease`` controller as KubeEdge's edged runs them
(protocol.md 6.1-6.2; shapes in ``kubeedge-1.23-ws-pods.jsonl``):

- register: ``metaclient.create_node(node)``; AlreadyExists -> ``get_node``;
  retried with back-off while the cloud is away (pods keep running meanwhile:
  they come from the local store);
- status: computed every ``node_status_update_frequency``; a strategic-merge
  patch is sent when it changed, or every ``node_status_report_frequency``
  even when it did not (then with fresh heartbeat times);
- lease: ``kube-node-lease/<node>`` created if missing (owned by the Node) and
  renewed every quarter of ``node_lease_duration`` (10 s for 40 s).

Machine facts (CPU, memory, ephemeral storage, boot id, OS image) are read from
/proc, /etc and statvfs; allocatable subtracts kubelet's default hard eviction
thresholds (100Mi memory, 10% of the node filesystem).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import logging
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecore.edged.cri import CRIClient
from edgecore.edged.errors import CRIError
from edgecore.edged.metasource import MetaSource, is_already_exists, is_not_found
from edgecore.edged.settings import EdgedSettings
from edgecore.edged.status import rfc3339

__all__ = ["MachineInfo", "NodeAgent", "build_node", "node_status_patch"]

log = logging.getLogger(__name__)

KUBELET_VERSION = "v1.32.10-kubeedge-py-0.1.0"
LEASE_NAMESPACE = "kube-node-lease"
EVICTION_MEMORY_KI = 100 * 1024
EVICTION_NODEFS_FRACTION = 0.10
CONDITION_ORDER = ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")


def _go_arch() -> str:
    m = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(m, m)


def _read(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


@dataclass(frozen=True, slots=True)
class MachineInfo:
    cpus: int
    memory_ki: int
    storage_ki: int
    machine_id: str
    system_uuid: str
    boot_id: str
    kernel: str
    os_image: str

    @classmethod
    def read(cls, root: Path) -> MachineInfo:
        try:
            cpus = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpus = os.cpu_count() or 1
        mem_ki = 0
        for line in _read("/proc/meminfo").splitlines():
            if line.startswith("MemTotal:"):
                mem_ki = int(line.split()[1])
        probe = root
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        st = os.statvfs(probe)
        storage_ki = st.f_blocks * st.f_frsize // 1024
        os_image = "Linux"
        for line in _read("/etc/os-release").splitlines():
            if line.startswith("PRETTY_NAME="):
                os_image = line.split("=", 1)[1].strip().strip('"')
        machine_id = _read("/etc/machine-id")
        return cls(
            cpus=cpus,
            memory_ki=mem_ki,
            storage_ki=storage_ki,
            machine_id=machine_id,
            system_uuid=_read("/sys/class/dmi/id/product_uuid", machine_id),
            boot_id=_read("/proc/sys/kernel/random/boot_id"),
            kernel=platform.release(),
            os_image=os_image,
        )


def _labels(settings: EdgedSettings) -> dict[str, str]:
    arch = _go_arch()
    labels = {
        "beta.kubernetes.io/arch": arch,
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch,
        "kubernetes.io/hostname": settings.node_name,
        "kubernetes.io/os": "linux",
        # cloudcore only dispatches pods to nodes with this label (protocol.md 6.1).
        "node-role.kubernetes.io/agent": "",
        "node-role.kubernetes.io/edge": "",
    }
    labels.update(settings.node_labels)
    return labels


def _condition(
    ctype: str, ok: bool, reason: str, message: str, now: str, previous: dict[str, Any] | None
) -> dict[str, Any]:
    status = "True" if ok else "False"
    since = now
    if previous and previous.get("status") == status and previous.get("lastTransitionTime"):
        since = previous["lastTransitionTime"]
    return {
        "type": ctype,
        "status": status,
        "lastHeartbeatTime": now,
        "lastTransitionTime": since,
        "reason": reason,
        "message": message,
    }


def build_status(
    settings: EdgedSettings,
    machine: MachineInfo,
    *,
    runtime_version: str,
    runtime_ready: bool,
    runtime_message: str,
    now: float,
    previous: dict[str, Any] | None,
) -> dict[str, Any]:
    stamp = rfc3339(now)
    prev = {c.get("type"): c for c in (previous or {}).get("conditions") or []}
    storage_bytes = machine.storage_ki * 1024
    capacity = {
        "cpu": str(machine.cpus),
        "ephemeral-storage": f"{machine.storage_ki}Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": f"{machine.memory_ki}Ki",
        "pods": str(settings.max_pods),
    }
    allocatable = dict(capacity)
    allocatable["memory"] = f"{max(0, machine.memory_ki - EVICTION_MEMORY_KI)}Ki"
    allocatable["ephemeral-storage"] = str(int(storage_bytes * (1 - EVICTION_NODEFS_FRACTION)))
    return {
        "capacity": capacity,
        "allocatable": allocatable,
        "conditions": [
            _condition(
                "MemoryPressure",
                False,
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
                stamp,
                prev.get("MemoryPressure"),
            ),
            _condition(
                "DiskPressure",
                False,
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
                stamp,
                prev.get("DiskPressure"),
            ),
            _condition(
                "PIDPressure",
                False,
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
                stamp,
                prev.get("PIDPressure"),
            ),
            _condition(
                "Ready",
                runtime_ready,
                "EdgeReady" if runtime_ready else "KubeletNotReady",
                "edge is posting ready status" if runtime_ready else runtime_message,
                stamp,
                prev.get("Ready"),
            ),
        ],
        "addresses": [
            {"type": "InternalIP", "address": settings.node_ip},
            {"type": "Hostname", "address": settings.node_name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": settings.kubelet_port}},
        "nodeInfo": {
            "machineID": machine.machine_id,
            "systemUUID": machine.system_uuid,
            "bootID": machine.boot_id,
            "kernelVersion": machine.kernel,
            "osImage": machine.os_image,
            "containerRuntimeVersion": runtime_version,
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": _go_arch(),
        },
    }


def build_node(settings: EdgedSettings, status: dict[str, Any]) -> dict[str, Any]:
    """The v1 Node edged registers (kubelet's initialNode, as KubeEdge's capture shows)."""
    return {
        "metadata": {
            "name": settings.node_name,
            "creationTimestamp": None,
            "labels": _labels(settings),
            "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"},
        },
        "spec": {} if settings.register_schedulable else {"unschedulable": True},
        "status": status,
    }


def _comparable(cond: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cond.items() if k != "lastHeartbeatTime"}


def node_status_patch(
    old: dict[str, Any], new: dict[str, Any], *, heartbeat: bool
) -> dict[str, Any] | None:
    """The strategic-merge patch of the node status, or None when nothing changed.

    ``heartbeat``: send the conditions (with new heartbeat times) even when unchanged.
    """
    st: dict[str, Any] = {}
    old_conds = {c.get("type"): c for c in old.get("conditions") or []}
    changed = []
    for cond in new["conditions"]:
        prev = old_conds.get(cond["type"])
        if heartbeat or prev is None or _comparable(prev) != _comparable(cond):
            if prev is None or heartbeat:
                changed.append(cond)
            else:
                delta = {k: v for k, v in cond.items() if prev.get(k) != v}
                delta["type"] = cond["type"]
                changed.append(delta)
    if changed:
        st["$setElementOrder/conditions"] = [{"type": c["type"]} for c in new["conditions"]]
        st["conditions"] = changed
    for key in ("capacity", "allocatable", "nodeInfo"):
        delta = {k: v for k, v in new[key].items() if (old.get(key) or {}).get(k) != v}
        if delta:
            st[key] = delta
    if new["addresses"] != old.get("addresses"):
        st["addresses"] = new["addresses"]
    if not st:
        return None
    return {"status": st}


class NodeAgent:
    """Registers the node, then reports its status and renews its lease until cancelled."""

    def __init__(self, cri: CRIClient, meta: MetaSource, settings: EdgedSettings) -> None:
        self.cri = cri
        self.meta = meta
        self.settings = settings
        self.machine = MachineInfo.read(settings.root_directory)
        self.node: dict[str, Any] | None = None
        self.reported: dict[str, Any] = {}
        self.lease: dict[str, Any] | None = None
        self.registered = asyncio.Event()
        self._last_report = 0.0

    async def _runtime_state(self) -> tuple[str, bool, str]:
        try:
            v = await self.cri.version()
            st = await self.cri.status()
        except CRIError as exc:
            return "", False, f"container runtime is down: {exc.details}"
        version = f"{v.runtime_name}://{v.runtime_version}"
        down = [c.type for c in st.status.conditions if not c.status]
        if down:
            return version, False, f"container runtime not ready: {', '.join(down)}"
        return version, True, ""

    async def current_status(self) -> dict[str, Any]:
        version, ready, message = await self._runtime_state()
        return build_status(
            self.settings,
            self.machine,
            runtime_version=version,
            runtime_ready=ready,
            runtime_message=message,
            now=time.time(),
            previous=self.reported,
        )

    async def register(self) -> None:
        """Register (or find) the Node, retrying with back-off until it works."""
        delay = self.settings.register_retry_initial
        while True:
            status = await self.current_status()
            node = build_node(self.settings, status)
            try:
                try:
                    self.node = await self.meta.create_node(node)
                    log.info("node %s: registered", self.settings.node_name)
                except Exception as exc:
                    if not is_already_exists(exc):
                        raise
                    self.node = await self.meta.get_node(self.settings.node_name)
                    log.info("node %s: already registered", self.settings.node_name)
            except Exception as exc:
                log.warning(
                    "node %s: registration failed, retry in %.0fs: %s",
                    self.settings.node_name,
                    delay,
                    exc,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.register_retry_max)
                continue
            self.reported = copy.deepcopy((self.node or {}).get("status") or {})
            self.registered.set()
            return

    async def _adopt_cloud_conditions(self) -> None:
        """Compare with the Node as the cloud has it, as kubelet does before each update.

        Someone else may have changed our conditions since our last patch: the node
        lifecycle controller (or cloudcore's edgecontroller) marks Ready Unknown when
        our lease or status came late. Judged only against what we last sent, we
        would leave it Unknown until the next full report (5 min by default).
        Offline, the query fails and we keep what we sent (the reconnect resyncs).
        """
        try:
            # Bounded: a query lost with its connection must not hold up the lease.
            async with asyncio.timeout(max(1.0, self.settings.node_status_update_frequency)):
                node = await self.meta.get_node(self.settings.node_name)
        except Exception as exc:
            log.debug("node %s: cannot read the node back: %s", self.settings.node_name, exc)
            return
        cloud = (node or {}).get("status") or {}
        theirs = {x.get("type"): x.get("status") for x in cloud.get("conditions") or []}
        ours = {x.get("type"): x.get("status") for x in self.reported.get("conditions") or []}
        if any(theirs.get(kind) != status for kind, status in ours.items()):
            log.info("node %s: conditions changed in the cloud (%s); reporting ours",
                     self.settings.node_name, theirs)
            self.reported = copy.deepcopy(cloud)

    async def report_status(self) -> bool:
        """Send a status patch if the status changed (or a report is due); True if sent."""
        loop = asyncio.get_running_loop()
        await self._adopt_cloud_conditions()
        new = await self.current_status()
        due = loop.time() - self._last_report >= self.settings.node_status_report_frequency
        patch = node_status_patch(self.reported, new, heartbeat=due)
        if patch is None:
            return False
        try:
            await self.meta.patch_node_status(self.settings.node_name, patch)
        except Exception as exc:
            log.warning("node %s: status patch failed: %s", self.settings.node_name, exc)
            return False
        self.reported = new
        self._last_report = loop.time()
        log.info(
            "node %s: status reported (Ready=%s)",
            self.settings.node_name,
            new["conditions"][-1]["status"],
        )
        return True

    def _lease_body(self) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        lease: dict[str, Any] = (
            copy.deepcopy(self.lease)
            if self.lease
            else {
                "metadata": {
                    "name": self.settings.node_name,
                    "namespace": LEASE_NAMESPACE,
                    "creationTimestamp": None,
                },
            }
        )
        node_uid = ((self.node or {}).get("metadata") or {}).get("uid")
        if node_uid and not lease["metadata"].get("ownerReferences"):
            lease["metadata"]["ownerReferences"] = [
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "name": self.settings.node_name,
                    "uid": node_uid,
                }
            ]
        lease["spec"] = {
            "holderIdentity": self.settings.node_name,
            "leaseDurationSeconds": self.settings.node_lease_duration,
            "renewTime": now,
        }
        return lease

    async def renew_lease(self) -> bool:
        try:
            if self.lease is None:
                try:
                    self.lease = await self.meta.get_lease(self.settings.node_name)
                except Exception as exc:
                    if not is_not_found(exc):
                        raise
                    self.lease = await self.meta.create_lease(self._lease_body())
                    return True
            self.lease = await self.meta.update_lease(self._lease_body())
            return True
        except Exception as exc:
            # A conflict or an outage: read the lease again next time.
            self.lease = None
            log.warning("node %s: lease renewal failed: %s", self.settings.node_name, exc)
            return False

    async def run(self) -> None:
        await self.register()
        await self.renew_lease()
        await self.report_status()
        loop = asyncio.get_running_loop()
        lease_every = self.settings.node_lease_duration / 4
        next_lease = loop.time() + lease_every
        next_status = loop.time() + self.settings.node_status_update_frequency
        while True:
            await asyncio.sleep(max(0.0, min(next_lease, next_status) - loop.time()))
            now = loop.time()
            if now >= next_status:
                await self.report_status()
                next_status = now + self.settings.node_status_update_frequency
            if now >= next_lease:
                await self.renew_lease()
                next_lease = now + lease_every

    async def resync(self) -> None:
        """The cloud came back: report the full status and renew the lease now."""
        if not self.registered.is_set():
            return
        self._last_report = -1e9
        with contextlib.suppress(Exception):
            await self.report_status()
        await self.renew_lease()
