"""The pod runtime: makes containerd run what the pod specs say.

:class:`PodRuntime` is edged's kubelet core, usable without the beehive module
(tests drive it directly). It keeps the desired pods (``upsert_pod`` /
``remove_pod``), and a per-pod worker (:mod:`podworkers`) runs
:meth:`PodRuntime.sync_pod`, which is idempotent and always works from what
the runtime reports now:

1. pod removed from the store: stop and remove its containers and sandbox,
   delete its pod dir;
2. pod being deleted (``deletionTimestamp``): stop its containers with the
   grace period, stop the sandbox, report the final status, then ask the cloud
   to delete the pod (``metaclient.delete_pod``, protocol.md 6.3);
3. otherwise: make sure a ready sandbox exists (host network or CNI), and for
   each container: start it if it never ran; restart it by ``restartPolicy``
   with crash-loop back-off (:mod:`backoff`); kill it when its liveness probe
   fails; recreate it when its spec changed;
4. compute the pod status (:mod:`status`) and, when it changed, send the patch
   with ``metaclient.patch_pod_status``.

containerd 1.6 has no container events, so a relist task polls the runtime
every ``relist_interval`` seconds (one ListContainers and one ListPodSandbox,
filtered by our labels) and pokes the pods whose containers changed; every pod
is also resynced every ``resync_interval``. The same pass garbage-collects
sandboxes and containers carrying our labels whose pod edged no longer has.

Edge autonomy: :meth:`start` loads the pods from ``metaclient.list_pods()``
(the local store) before it garbage-collects anything, and a sync adopts the
sandbox and containers it finds (same container id); nothing is deleted
because the cloud is silent, only because the store says the pod is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import shutil
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecore.edged import labels as L
from edgecore.edged import status as podstatus
from edgecore.edged.backoff import Backoff
from edgecore.edged.cri import CRIClient, pb
from edgecore.edged.criconfig import container_config, host_network, sandbox_config
from edgecore.edged.errors import (
    ConfigSourceMissing,
    CRIError,
    CRINotFound,
    EdgedError,
    ImagePullError,
    PodSpecError,
)
from edgecore.edged.metasource import MetaSource, is_not_found
from edgecore.edged.podconfig import ConfigSources, prepare_volumes, references, resolve_env
from edgecore.edged.podworkers import PodWorkers
from edgecore.edged.probes import ProbeManager
from edgecore.edged.settings import EdgedSettings

__all__ = ["PodRecord", "PodRuntime"]

log = logging.getLogger(__name__)

#: How many removed pod UIDs are remembered to ignore late messages about them.
REMOVED_MEMORY = 4096


def _ns_to_s(ns: int) -> float:
    return ns / 1e9


def _parse_time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return float(time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone)
    except ValueError:
        return None


@dataclass
class PodRecord:
    """What edged holds for one pod."""

    pod: dict[str, Any]
    start_time: float = field(default_factory=time.time)
    reported: dict[str, Any] | None = None  # the status the cloud has (baseline of patches)
    queued: dict[str, Any] | None = None  # a status metamanager keeps while offline
    status: dict[str, Any] | None = None  # the last computed status
    pod_ip: str = ""
    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)  # container -> reason
    volumes_dirty: bool = True
    next_attempt: dict[str, int] = field(default_factory=dict)  # after a sandbox change
    delete_sent: bool = False

    @property
    def uid(self) -> str:
        return str(self.pod["metadata"]["uid"])

    @property
    def namespace(self) -> str:
        return str(self.pod["metadata"].get("namespace", ""))

    @property
    def name(self) -> str:
        return str(self.pod["metadata"]["name"])

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def terminating(self) -> bool:
        return bool(self.pod["metadata"].get("deletionTimestamp"))

    def grace_period(self, default: int) -> int:
        meta, spec = self.pod["metadata"], self.pod.get("spec") or {}
        for v in (
            meta.get("deletionGracePeriodSeconds"),
            spec.get("terminationGracePeriodSeconds"),
        ):
            if v is not None:
                return max(0, int(v))
        return default


class PodRuntime:
    """Runs pods on a CRI runtime; see the module docstring.

    Args:
        cri: the CRI client.
        meta: metaclient (or anything shaped like it).
        settings: edged's settings.
    """

    def __init__(self, cri: CRIClient, meta: MetaSource, settings: EdgedSettings) -> None:
        self.cri = cri
        self.meta = meta
        self.settings = settings
        self.pods: dict[str, PodRecord] = {}
        self.backoff = Backoff(settings.backoff_initial, settings.backoff_max)
        self.pull_backoff = Backoff(settings.backoff_initial, settings.backoff_max)
        self.workers = PodWorkers(self.sync_pod, limit=settings.max_concurrent_syncs)
        self.probes = ProbeManager(
            cri, self.workers.poke, default_timeout=settings.probe_timeout_default
        )
        self._loaded = False
        self._tasks: list[asyncio.Task[None]] = []
        self._last_seen: dict[str, tuple[Any, ...]] = {}
        self._last_resync = 0.0
        self._pull_failed: dict[str, float] = {}  # pull key -> time of the last failure
        # UIDs the store said are gone, newest last. A UID never comes back, so a late
        # insert/update for one (a resend crossing the delete) is stale: applying it
        # would restart the termination and send the API a second delete.
        self._removed: OrderedDict[str, None] = OrderedDict()

    # --- desired state -----------------------------------------------------------

    async def start(self, *, load_from_store: bool = True) -> None:
        """Load the pods of the local store (autonomy), then start the relist loop."""
        if load_from_store:
            await self.load_from_store()
        self._loaded = True
        self._tasks.append(asyncio.create_task(self._relist_loop(), name="edged-relist"))

    async def load_from_store(self) -> None:
        pods = await self.meta.list_pods()
        for pod in pods:
            node = (pod.get("spec") or {}).get("nodeName")
            if node and node != self.settings.node_name:
                continue
            self.upsert_pod(pod)
        log.info("node %s: loaded %d pods from the local store", self.settings.node_name, len(pods))

    def upsert_pod(self, pod: dict[str, Any]) -> None:
        """A pod was added or changed (from the cloud or the store): sync it now."""
        meta = pod.get("metadata") or {}
        uid = meta.get("uid")
        if not uid or not meta.get("name"):
            log.warning("ignoring a pod without uid or name: %s", meta)
            return
        if uid in self._removed:
            log.info(
                "node %s: pod %s/%s (%s) was already removed; late %s ignored",
                self.settings.node_name,
                meta.get("namespace", ""),
                meta["name"],
                uid,
                "deletion" if meta.get("deletionTimestamp") else "update",
            )
            return
        rec = self.pods.get(uid)
        if rec is None:
            rec = PodRecord(pod=copy.deepcopy(pod))
            rec.reported = copy.deepcopy(pod.get("status")) or {}
            started = _parse_time((pod.get("status") or {}).get("startTime"))
            if started is not None:
                rec.start_time = started
            self.pods[uid] = rec
            log.info("node %s: pod %s (%s) added", self.settings.node_name, rec.key, uid)
        else:
            rec.pod = copy.deepcopy(pod)
        self.workers.poke(uid)

    def remove_pod(self, pod: dict[str, Any]) -> None:
        """The pod is gone from the store: tear everything down."""
        uid = (pod.get("metadata") or {}).get("uid", "")
        if not uid:
            # The legacy delete form names the pod only; find it by namespace/name.
            meta = pod.get("metadata") or {}
            key = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
            uid = next((u for u, r in self.pods.items() if r.key == key), "")
        if uid in self.pods:
            log.info("node %s: pod %s removed", self.settings.node_name, self.pods[uid].key)
            del self.pods[uid]
        if uid:
            self._removed[uid] = None
            self._removed.move_to_end(uid)
            while len(self._removed) > REMOVED_MEMORY:
                self._removed.popitem(last=False)
            self.workers.poke(uid)

    def config_changed(self, kind: str, namespace: str, name: str) -> None:
        """A configmap/secret changed: refresh the volumes of the pods that use it."""
        for uid, rec in self.pods.items():
            if rec.namespace == namespace and references(rec.pod, kind, name):
                rec.volumes_dirty = True
                self.workers.poke(uid)

    def pod_status(self, uid: str) -> dict[str, Any] | None:
        rec = self.pods.get(uid)
        return copy.deepcopy(rec.status) if rec and rec.status else None

    # --- shutdown ----------------------------------------------------------------

    async def close(self) -> None:
        """Stop edged's tasks; containers keep running (autonomy across restarts)."""
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()
        await self.workers.close()
        await self.probes.close()

    # --- relist (containerd 1.6 has no events) --------------------------------------

    async def _relist_loop(self) -> None:
        failing = False
        while True:
            try:
                await self.relist()
            except CRIError as exc:
                # One line when the runtime goes away and one when it is back, not one a second.
                if not failing:
                    log.warning("node %s: relist failed: %s", self.settings.node_name, exc)
                failing = True
            except Exception:
                # The poll is edged's only view of container exits: never let it die.
                log.exception("node %s: relist failed", self.settings.node_name)
            else:
                if failing:
                    log.info("node %s: container runtime answers again", self.settings.node_name)
                failing = False
            await asyncio.sleep(self.settings.relist_interval)

    async def relist(self) -> None:
        """One poll of the runtime: poke changed pods, collect garbage."""
        owned = L.owned(self.settings.node_name)
        sandboxes = await self.cri.list_pod_sandbox(owned)
        containers = await self.cri.list_containers(owned)
        seen: dict[str, list[Any]] = {}
        for sb in sandboxes:
            seen.setdefault(sb.labels.get(L.POD_UID, ""), []).append(("s", sb.id, sb.state))
        for c in containers:
            seen.setdefault(c.labels.get(L.POD_UID, ""), []).append(("c", c.id, c.state))
        signatures = {uid: tuple(sorted(v)) for uid, v in seen.items()}
        now = time.monotonic()
        resync = now - self._last_resync >= self.settings.resync_interval
        if resync:
            self._last_resync = now
        for uid, rec in self.pods.items():
            sig = signatures.get(uid, ())
            if resync or self._last_seen.get(uid) != sig:
                self.workers.poke(uid)
            elif rec.status is not None and rec.status not in (rec.reported, rec.queued):
                self.workers.poke(uid)  # a patch that failed (offline) is retried
        self._last_seen = signatures
        if self._loaded:
            for uid in signatures:
                if uid not in self.pods and not self.workers.busy(uid):
                    log.info(
                        "node %s: collecting pod %s, not ours any more",
                        self.settings.node_name,
                        uid,
                    )
                    self.workers.poke(uid)
        live = {c.id for c in containers if c.state == pb.CONTAINER_RUNNING}
        self.probes.forget_except(live)

    # --- sync ----------------------------------------------------------------------

    async def sync_pod(self, uid: str) -> None:
        """Make the runtime match pod ``uid`` (run by its worker, never concurrently)."""
        try:
            await self._sync_pod(uid)
        except CRIError as exc:
            # The runtime is down or refused: try again after the back-off's first step.
            log.warning("node %s: sync of pod %s failed: %s", self.settings.node_name, uid, exc)
            self.workers.poke(uid, self.settings.backoff_initial)

    async def _sync_pod(self, uid: str) -> None:
        rec = self.pods.get(uid)
        owned = {**L.owned(self.settings.node_name), L.POD_UID: uid}
        sandboxes = await self.cri.list_pod_sandbox(owned)
        containers = await self.cri.list_containers(owned)
        if rec is None:
            await self._teardown(uid, sandboxes, containers, grace=-1)
            return
        if rec.terminating:
            await self._terminate(rec, sandboxes, containers)
            return
        await self._sync_running(rec, sandboxes, containers)

    async def _teardown(
        self, uid: str, sandboxes: list[Any], containers: list[Any], *, grace: int
    ) -> None:
        """Remove everything of a pod edged no longer has (``grace`` < 0: per container)."""
        await self._stop_containers(containers, grace)
        for c in containers:
            with contextlib.suppress(CRINotFound):
                await self.cri.remove_container(c.id)
        for sb in sandboxes:
            with contextlib.suppress(CRINotFound):
                await self.cri.stop_pod_sandbox(sb.id)
            with contextlib.suppress(CRINotFound):
                await self.cri.remove_pod_sandbox(sb.id)
        self.backoff.forget_prefix(uid)
        self.pull_backoff.forget_prefix(uid)
        for key in [k for k in self._pull_failed if k.startswith(uid)]:
            del self._pull_failed[key]
        self._last_seen.pop(uid, None)
        pod_dir = self.settings.pods_dir / uid
        await asyncio.to_thread(shutil.rmtree, pod_dir, True)
        if sandboxes or containers:
            log.info(
                "node %s: pod %s torn down (%d sandboxes, %d containers)",
                self.settings.node_name,
                uid,
                len(sandboxes),
                len(containers),
            )

    async def _stop_containers(self, containers: list[Any], grace: int) -> None:
        running = [c for c in containers if c.state in (pb.CONTAINER_RUNNING, pb.CONTAINER_UNKNOWN)]

        async def stop(c: Any) -> None:
            seconds = grace
            if grace < 0:  # the pod is gone: use the grace period it was created with
                try:
                    seconds = int(c.annotations.get(L.GRACE_PERIOD, ""))
                except ValueError:
                    seconds = self.settings.default_grace_period
            with contextlib.suppress(CRINotFound):
                await self.cri.stop_container(c.id, max(0, seconds))

        await asyncio.gather(*(stop(c) for c in running))

    async def _terminate(self, rec: PodRecord, sandboxes: list[Any], containers: list[Any]) -> None:
        grace = rec.grace_period(self.settings.default_grace_period)
        if any(c.state == pb.CONTAINER_RUNNING for c in containers):
            log.info(
                "node %s: stopping pod %s (grace %ss)", self.settings.node_name, rec.key, grace
            )
        await self._stop_containers(containers, grace)
        for sb in sandboxes:
            if sb.state == pb.SANDBOX_READY:
                with contextlib.suppress(CRINotFound):
                    await self.cri.stop_pod_sandbox(sb.id)
        containers = await self.cri.list_containers(
            {**L.owned(self.settings.node_name), L.POD_UID: rec.uid}
        )
        views = await self._views(rec, containers, sandbox_id=None, terminal=True)
        await self._report(rec, views, sandbox_ready=False, terminal=True)
        if self.pods.get(rec.uid) is not rec:
            return  # the cloud's delete arrived meanwhile: nothing left to ask for
        if not rec.delete_sent:
            options = {"gracePeriodSeconds": 0, "preconditions": {"uid": rec.uid}}
            try:
                await self.meta.delete_pod(rec.namespace, rec.name, options)
            except Exception as exc:
                if not is_not_found(exc):
                    log.warning(
                        "node %s: delete of pod %s failed, will retry: %s",
                        self.settings.node_name,
                        rec.key,
                        exc,
                    )
                    return
            rec.delete_sent = True
            log.info("node %s: pod %s terminated, deletion sent", self.settings.node_name, rec.key)

    async def _ensure_sandbox(
        self, rec: PodRecord, sandboxes: list[Any], containers: list[Any]
    ) -> Any | None:
        ready = sorted(
            (s for s in sandboxes if s.state == pb.SANDBOX_READY), key=lambda s: s.created_at
        )
        if ready:
            current = ready[-1]
            for extra in ready[:-1]:  # more than one ready sandbox: keep the newest
                await self._remove_sandbox(extra.id, containers)
            if not rec.pod_ip:
                rec.pod_ip = await self._sandbox_ip(current.id)
            return current
        if sandboxes and self._completed(rec, containers):
            return None  # a finished Never/OnFailure pod is not started again
        # No ready sandbox: kill what is left and start a new one (kubelet does the same
        # when the sandbox dies, since the containers lost their network namespace).
        attempt = max((s.metadata.attempt + 1 for s in sandboxes), default=0)
        # Restart counts go on across sandboxes, as kubelet's do.
        for c in containers:
            name = c.metadata.name
            rec.next_attempt[name] = max(rec.next_attempt.get(name, 0), c.metadata.attempt + 1)
        for sb in sandboxes:
            await self._remove_sandbox(sb.id, containers)
        cfg = self._sandbox_config(rec, attempt)
        await asyncio.to_thread(Path(cfg.log_directory).mkdir, parents=True, exist_ok=True)
        sid = await self.cri.run_pod_sandbox(cfg)
        rec.pod_ip = await self._sandbox_ip(sid)
        log.info(
            "node %s: pod %s sandbox %s started, IP %s",
            self.settings.node_name,
            rec.key,
            sid[:12],
            rec.pod_ip,
        )
        return _SandboxRef(sid, attempt)

    async def _remove_sandbox(self, sandbox_id: str, containers: list[Any]) -> None:
        mine = [c for c in containers if c.pod_sandbox_id == sandbox_id]
        await self._stop_containers(mine, 0)
        for c in mine:
            with contextlib.suppress(CRINotFound):
                await self.cri.remove_container(c.id)
        with contextlib.suppress(CRINotFound):
            await self.cri.stop_pod_sandbox(sandbox_id)
        with contextlib.suppress(CRINotFound):
            await self.cri.remove_pod_sandbox(sandbox_id)

    async def _sandbox_ip(self, sandbox_id: str) -> str:
        st = await self.cri.pod_sandbox_status(sandbox_id)
        ns = st.linux.namespaces.options
        if ns.network == pb.NODE:
            return self.settings.node_ip
        return str(st.network.ip) or ""

    def _sandbox_config(self, rec: PodRecord, attempt: int) -> Any:
        logdir = self.settings.logs_dir / f"{rec.namespace}_{rec.name}_{rec.uid}"
        return sandbox_config(
            rec.pod, node_name=self.settings.node_name, attempt=attempt, log_directory=logdir
        )

    def _completed(self, rec: PodRecord, containers: list[Any]) -> bool:
        policy = (rec.pod.get("spec") or {}).get("restartPolicy") or "Always"
        if policy == "Always":
            return False
        names = {c["name"] for c in (rec.pod.get("spec") or {}).get("containers") or []}
        latest = self._latest_by_name(containers)
        if set(latest) != names:
            return False
        return all(c.state == pb.CONTAINER_EXITED for c in latest.values()) and (
            policy == "Never" or (rec.status is not None and rec.status.get("phase") == "Succeeded")
        )

    @staticmethod
    def _latest_by_name(containers: list[Any], sandbox_id: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for c in sorted(containers, key=lambda c: (c.metadata.attempt, c.created_at)):
            if sandbox_id is None or c.pod_sandbox_id == sandbox_id:
                out[c.metadata.name] = c
        return out

    async def _sync_running(
        self, rec: PodRecord, sandboxes: list[Any], containers: list[Any]
    ) -> None:
        sandbox_ready = False
        try:
            sb = await self._ensure_sandbox(rec, sandboxes, containers)
        except CRIError as exc:
            log.warning(
                "node %s: pod %s: sandbox failed: %s", self.settings.node_name, rec.key, exc
            )
            for c in (rec.pod.get("spec") or {}).get("containers") or []:
                rec.waiting[c["name"]] = ("ContainerCreating", f"sandbox: {exc.details}")
            self.workers.poke(rec.uid, self.settings.backoff_initial)
            sb = None
        if sb is not None:
            sandbox_ready = True
            sandbox_id, sandbox_attempt = sb.id, sb.metadata.attempt
            containers = await self.cri.list_containers(
                {**L.owned(self.settings.node_name), L.POD_UID: rec.uid}
            )
            # Containers of older sandboxes are gone with their sandbox.
            for c in containers:
                if c.pod_sandbox_id != sandbox_id:
                    with contextlib.suppress(CRINotFound):
                        await self.cri.remove_container(c.id)
            containers = [c for c in containers if c.pod_sandbox_id == sandbox_id]
            await self._sync_containers(rec, sandbox_id, sandbox_attempt, containers)
            containers = await self.cri.list_containers(
                {**L.owned(self.settings.node_name), L.POD_UID: rec.uid}
            )
            views = await self._views(rec, containers, sandbox_id=sandbox_id, terminal=False)
        else:
            views = await self._views(rec, containers, sandbox_id=None, terminal=False)
        await self._report(rec, views, sandbox_ready=sandbox_ready, terminal=False)

    async def _sync_containers(
        self, rec: PodRecord, sandbox_id: str, sandbox_attempt: int, containers: list[Any]
    ) -> None:
        spec = rec.pod.get("spec") or {}
        policy = spec.get("restartPolicy") or "Always"
        by_name: dict[str, list[Any]] = {}
        for c in sorted(containers, key=lambda c: (c.metadata.attempt, c.created_at), reverse=True):
            by_name.setdefault(c.metadata.name, []).append(c)
        host = self.settings.node_ip if host_network(rec.pod) else rec.pod_ip
        sources = ConfigSources(self.meta, rec.namespace)
        volumes = None
        if rec.volumes_dirty and any(c.state == pb.CONTAINER_RUNNING for c in containers):
            try:
                volumes = await self._volumes(rec, sources)
            except EdgedError as exc:
                # Running containers keep their current files; retried on the next sync.
                log.warning(
                    "node %s: pod %s: volumes not refreshed: %s",
                    self.settings.node_name,
                    rec.key,
                    exc,
                )
                self.workers.poke(rec.uid, self.settings.backoff_initial)
        now = time.time()
        for cspec in spec.get("containers") or []:
            name = cspec["name"]
            history = by_name.get(name, [])
            latest = history[0] if history else None
            # kubelet keeps the newest dead container per name (lastState, previous logs).
            dead = [c for c in history if c.state != pb.CONTAINER_RUNNING]
            keep = dead[:1] if history and history[0].state == pb.CONTAINER_RUNNING else dead[:2]
            for old in dead:
                if old not in keep and old is not history[0]:
                    with contextlib.suppress(CRINotFound):
                        await self.cri.remove_container(old.id)
            bkey = f"{rec.uid}/{name}/{L.container_hash(cspec)}"
            if latest is not None and latest.state == pb.CONTAINER_RUNNING:
                if latest.annotations.get(L.CONTAINER_HASH) != L.container_hash(cspec):
                    log.info(
                        "node %s: pod %s container %s changed, restarting",
                        self.settings.node_name,
                        rec.key,
                        name,
                    )
                    grace = rec.grace_period(self.settings.default_grace_period)
                    await self.cri.stop_container(latest.id, grace)
                    self.workers.poke(rec.uid)
                    continue
                failed = [
                    kind
                    for kind in ("livenessProbe", "startupProbe")
                    if self.probes.result(latest.id, kind) is False
                ]
                if failed:
                    log.info(
                        "node %s: pod %s container %s failed its %s, killing",
                        self.settings.node_name,
                        rec.key,
                        name,
                        failed[0],
                    )
                    grace = rec.grace_period(self.settings.default_grace_period)
                    await self.cri.stop_container(latest.id, grace)
                    self.workers.poke(rec.uid)
                    continue
                self.probes.ensure(rec.uid, cspec, latest.id, host)
                continue
            if latest is not None and latest.state == pb.CONTAINER_CREATED:
                with contextlib.suppress(CRINotFound):
                    await self.cri.remove_container(latest.id)
                latest = history[1] if len(history) > 1 else None
            attempt = rec.next_attempt.get(name, 0)
            if latest is not None:  # it ran and exited
                st = await self.cri.container_status(latest.id)
                if policy == "Never" or (policy == "OnFailure" and st.exit_code == 0):
                    continue
                finished = _ns_to_s(st.finished_at) or now
                remaining = self.backoff.remaining(bkey, finished, now)
                if remaining > 0:
                    delay = self.backoff.delay(bkey)
                    rec.waiting[name] = (
                        "CrashLoopBackOff",
                        f"back-off {int(delay)}s restarting failed container={name} "
                        f"pod={rec.name}_{rec.namespace}({rec.uid})",
                    )
                    self.workers.poke(rec.uid, remaining)
                    continue
                self.backoff.next(bkey, now)
                attempt = latest.metadata.attempt + 1
            if volumes is None:
                try:
                    volumes = await self._volumes(rec, sources)
                except EdgedError as exc:
                    self._config_error(rec, exc)
                    return
            await self._start_container(
                rec, cspec, sandbox_id, sandbox_attempt, attempt, sources, volumes
            )

    def _config_error(self, rec: PodRecord, exc: EdgedError) -> None:
        log.warning("node %s: pod %s: %s", self.settings.node_name, rec.key, exc)
        for c in (rec.pod.get("spec") or {}).get("containers") or []:
            rec.waiting[c["name"]] = ("CreateContainerConfigError", str(exc))
        self.workers.poke(rec.uid, self.settings.backoff_initial)

    async def _volumes(self, rec: PodRecord, sources: ConfigSources) -> dict[str, Any]:
        # Clear the flag before reading the sources, not after: a configmap
        # update that lands while they are read sets it again and earns another
        # refresh, where clearing it afterwards would drop that update.
        rec.volumes_dirty = False
        try:
            volumes = await prepare_volumes(
                rec.pod,
                self.settings.pods_dir / rec.uid,
                sources,
                self.meta,
                node_name=self.settings.node_name,
                host_ip=self.settings.node_ip,
                pod_ip=rec.pod_ip,
            )
        except BaseException:
            rec.volumes_dirty = True
            raise
        return volumes

    async def _start_container(
        self,
        rec: PodRecord,
        cspec: dict[str, Any],
        sandbox_id: str,
        sandbox_attempt: int,
        attempt: int,
        sources: ConfigSources,
        volumes: dict[str, Any],
    ) -> None:
        name = cspec["name"]
        try:
            image = await self._ensure_image(rec, cspec)
        except ImagePullError as exc:
            rec.waiting[name] = (exc.reason, exc.message)
            log.warning("node %s: pod %s: %s", self.settings.node_name, rec.key, exc)
            return
        try:
            env = await resolve_env(
                rec.pod,
                cspec,
                sources,
                node_name=self.settings.node_name,
                host_ip=self.settings.node_ip,
                pod_ip=rec.pod_ip,
            )
            cfg = container_config(
                rec.pod,
                cspec,
                node_name=self.settings.node_name,
                attempt=attempt,
                image=image,
                env=env,
                volumes=volumes,
            )
        except (ConfigSourceMissing, PodSpecError) as exc:
            rec.waiting[name] = ("CreateContainerConfigError", str(exc))
            log.warning(
                "node %s: pod %s container %s: %s", self.settings.node_name, rec.key, name, exc
            )
            self.workers.poke(rec.uid, self.settings.backoff_initial)
            return
        sb_cfg = self._sandbox_config(rec, sandbox_attempt)
        rec.waiting[name] = ("ContainerCreating", "")
        try:
            cid = await self.cri.create_container(sandbox_id, cfg, sb_cfg)
            await self.cri.start_container(cid)
        except CRIError as exc:
            rec.waiting[name] = ("RunContainerError", exc.details)
            log.warning(
                "node %s: pod %s container %s failed to start: %s",
                self.settings.node_name,
                rec.key,
                name,
                exc,
            )
            self.workers.poke(rec.uid, self.settings.backoff_initial)
            return
        rec.waiting.pop(name, None)
        rec.next_attempt.pop(name, None)
        log.info(
            "node %s: pod %s container %s started: %s (restart %d)",
            self.settings.node_name,
            rec.key,
            name,
            cid[:12],
            attempt,
        )

    async def _ensure_image(self, rec: PodRecord, cspec: dict[str, Any]) -> str:
        image = cspec.get("image") or ""
        if not image:
            raise ImagePullError(image, "InvalidImageName", "no image given")
        policy = cspec.get("imagePullPolicy")
        if not policy:
            tagged = ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")
            policy = "IfNotPresent" if tagged or "@" in image else "Always"
        present = await self.cri.image_status(image)
        if policy == "Never":
            if present is None:
                raise ImagePullError(
                    image,
                    "ErrImageNeverPull",
                    f'Container image "{image}" is not present with pull policy of Never',
                )
            return image
        if policy == "IfNotPresent" and present is not None:
            return image
        key = f"{rec.uid}/pull/{image}"
        now = time.time()
        failed_at = self._pull_failed.get(key)
        if failed_at is not None:
            remaining = self.pull_backoff.remaining(key, failed_at, now)
            if remaining > 0:
                self.workers.poke(rec.uid, remaining)
                raise ImagePullError(image, "ImagePullBackOff", f'Back-off pulling image "{image}"')
        try:
            await self._pull(image)
        except CRIError as exc:
            failed = time.time()
            self._pull_failed[key] = failed
            delay = self.pull_backoff.next(key, failed)
            self.workers.poke(rec.uid, delay)
            raise ImagePullError(image, "ErrImagePull", exc.details) from exc
        self._pull_failed.pop(key, None)
        return image

    async def _pull(self, image: str) -> None:
        log.info("node %s: pulling image %s", self.settings.node_name, image)
        started = time.monotonic()

        async def progress() -> None:
            while True:
                await asyncio.sleep(self.settings.image_pull_progress_interval)
                log.info(
                    "node %s: still pulling %s (%.0fs)",
                    self.settings.node_name,
                    image,
                    time.monotonic() - started,
                )

        ticker = asyncio.create_task(progress(), name=f"pull-progress-{image}")
        try:
            ref = await self.cri.pull_image(image)
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        log.info(
            "node %s: pulled %s (%s) in %.1fs",
            self.settings.node_name,
            image,
            ref,
            time.monotonic() - started,
        )

    # --- status --------------------------------------------------------------------

    async def _views(
        self, rec: PodRecord, containers: list[Any], *, sandbox_id: str | None, terminal: bool
    ) -> list[podstatus.ContainerView]:
        by_name: dict[str, list[Any]] = {}
        for c in sorted(containers, key=lambda c: (c.metadata.attempt, c.created_at), reverse=True):
            if sandbox_id is None or c.pod_sandbox_id == sandbox_id:
                by_name.setdefault(c.metadata.name, []).append(c)
        views = []
        for cspec in (rec.pod.get("spec") or {}).get("containers") or []:
            name = cspec["name"]
            history = by_name.get(name, [])
            views.append(await self._view(rec, cspec, history, terminal=terminal))
        return views

    async def _terminated(self, cid: str) -> tuple[Any, dict[str, Any]] | None:
        try:
            st = await self.cri.container_status(cid)
        except CRINotFound:
            return None
        t: dict[str, Any] = {
            "containerID": f"containerd://{cid}",
            "exitCode": int(st.exit_code),
            "finishedAt": podstatus.rfc3339(_ns_to_s(st.finished_at)),
            "reason": st.reason or ("Completed" if st.exit_code == 0 else "Error"),
            "startedAt": podstatus.rfc3339(_ns_to_s(st.started_at)),
        }
        if st.message:
            t["message"] = st.message
        return st, t

    async def _view(
        self, rec: PodRecord, cspec: dict[str, Any], history: list[Any], *, terminal: bool
    ) -> podstatus.ContainerView:
        name, image = cspec["name"], cspec.get("image", "")
        latest = history[0] if history else None
        if latest is None:
            reason, message = rec.waiting.get(name, ("ContainerCreating", ""))
            return podstatus.ContainerView(name=name, image=image, reason=reason, message=message)
        try:
            st = await self.cri.container_status(latest.id)
        except CRINotFound:
            reason, message = rec.waiting.get(name, ("ContainerCreating", ""))
            return podstatus.ContainerView(name=name, image=image, reason=reason, message=message)
        restarts = int(latest.annotations.get(L.RESTART_COUNT, latest.metadata.attempt) or 0)
        prev = await self._terminated(history[1].id) if len(history) > 1 else None
        last_terminated = prev[1] if prev else None
        cid = f"containerd://{latest.id}"
        image_id = st.image_ref or latest.image_ref
        if st.state == pb.CONTAINER_RUNNING:
            ready = True
            for kind in ("readinessProbe", "startupProbe"):
                if cspec.get(kind) and self.probes.result(latest.id, kind) is not True:
                    ready = False
            started = (
                None
                if not cspec.get("startupProbe")
                else self.probes.result(latest.id, "startupProbe") is True
            )
            return podstatus.ContainerView(
                name=name,
                image=image,
                state="running",
                container_id=cid,
                image_id=image_id,
                started_at=_ns_to_s(st.started_at),
                restart_count=restarts,
                ready=ready and not terminal,
                last_terminated=last_terminated,
                started=started,
            )
        if st.state == pb.CONTAINER_EXITED:
            term = await self._terminated(latest.id)
            waiting = rec.waiting.get(name)
            if waiting and not terminal and term is not None:
                # It exited and will be restarted: kubelet shows waiting with lastState.
                return podstatus.ContainerView(
                    name=name,
                    image=image,
                    state="waiting",
                    container_id=cid,
                    image_id=image_id,
                    reason=waiting[0],
                    message=waiting[1],
                    restart_count=restarts,
                    last_terminated=term[1],
                )
            return podstatus.ContainerView(
                name=name,
                image=image,
                state="terminated",
                container_id=cid,
                image_id=image_id,
                reason=st.reason,
                message=st.message,
                started_at=_ns_to_s(st.started_at),
                finished_at=_ns_to_s(st.finished_at),
                exit_code=int(st.exit_code),
                restart_count=restarts,
                last_terminated=last_terminated,
            )
        reason, message = rec.waiting.get(name, ("ContainerCreating", ""))
        return podstatus.ContainerView(
            name=name,
            image=image,
            container_id="",
            image_id="",
            reason=reason,
            message=message,
            restart_count=restarts,
            last_terminated=last_terminated,
        )

    async def _report(
        self,
        rec: PodRecord,
        views: list[podstatus.ContainerView],
        *,
        sandbox_ready: bool,
        terminal: bool,
    ) -> None:
        new = podstatus.build_status(
            rec.pod,
            views,
            sandbox_ready=sandbox_ready,
            pod_ip="" if terminal and not rec.pod_ip else rec.pod_ip,
            host_ip=self.settings.node_ip,
            start_time=rec.start_time,
            now=time.time(),
            previous=rec.status or rec.reported,
            terminal=terminal,
        )
        if new != rec.status:
            log.info("node %s: pod %s is %s", self.settings.node_name, rec.key, _summary(new))
        rec.status = new
        patch = podstatus.status_patch(rec.uid, rec.reported, new)
        if patch is None or new == rec.queued:
            return
        try:
            await self.meta.patch_pod_status(rec.namespace, rec.name, patch)
        except Exception as exc:
            if getattr(exc, "queued", False):
                # Offline: metamanager keeps the latest patch per pod and sends it when
                # the cloud returns. The baseline stays the last status the cloud
                # acknowledged, so each kept patch carries every change since then.
                rec.queued = copy.deepcopy(new)
                log.info(
                    "node %s: pod %s status kept until the cloud returns",
                    self.settings.node_name,
                    rec.key,
                )
                return
            # Not kept: the next relist retries it.
            log.warning(
                "node %s: status patch of pod %s failed: %s", self.settings.node_name, rec.key, exc
            )
            return
        rec.reported = copy.deepcopy(new)
        rec.queued = None


@dataclass(frozen=True)
class _SandboxMeta:
    attempt: int


@dataclass(frozen=True)
class _SandboxRef:
    """A just-created sandbox, shaped like a CRI ``PodSandbox`` where it matters."""

    id: str
    _attempt: int

    @property
    def metadata(self) -> _SandboxMeta:
        return _SandboxMeta(self._attempt)


def _summary(status: dict[str, Any]) -> str:
    parts = [status.get("phase", "?")]
    for cs in status.get("containerStatuses") or []:
        state = next(iter(cs.get("state") or {"?": {}}))
        detail = (cs["state"].get(state) or {}).get("reason", "")
        parts.append(
            f"{cs['name']}={state}{'/' + detail if detail else ''}"
            f"{' ready' if cs.get('ready') else ''} restarts={cs.get('restartCount')}"
        )
    return " ".join(parts)
