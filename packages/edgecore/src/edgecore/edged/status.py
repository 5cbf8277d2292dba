"""Pod status: computed from what the runtime reports, and diffed into a patch.

Pure (no I/O, time passed in). Mirrors kubelet's ``generateAPIPodStatus`` /
``getPhase`` (``pkg/kubelet/kubelet_pods.go``), the condition generators in
``pkg/kubelet/status/generate.go`` and the strategic-merge patch kubelet sends
(``pkg/util/pod/pod.go`` PatchPodStatus), whose shapes the capture
``kubeedge-1.23-ws-pods.jsonl`` shows:

- ``{"metadata": {"uid": ...}, "status": {...changed keys...}}``;
- ``conditions`` is a list merged by ``type``: only changed conditions are sent,
  with ``$setElementOrder/conditions`` listing the full order; a field that
  disappeared is sent as ``null``;
- ``containerStatuses`` / ``hostIPs`` / ``podIPs`` have no merge key in this
  direction and are sent whole when they change.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ContainerView",
    "build_status",
    "pod_phase",
    "rfc3339",
    "status_patch",
]

# The pod status keys edged owns; other keys (qosClass, nominatedNodeName...) belong
# to the API server or the scheduler and are never nulled by a patch.
MANAGED_KEYS = (
    "phase",
    "conditions",
    "containerStatuses",
    "hostIP",
    "hostIPs",
    "podIP",
    "podIPs",
    "startTime",
    "message",
    "reason",
)
CONDITION_ORDER = (
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
)


def rfc3339(ts: float) -> str:
    """Kubernetes' ``metav1.Time`` wire form (second precision, UTC)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


@dataclass(frozen=True, slots=True)
class ContainerView:
    """What edged knows about one container of the pod spec.

    ``state`` is ``waiting``, ``running`` or ``terminated``. ``last_terminated``
    is the terminated state of the previous instance (kubelet's lastState).
    """

    name: str
    image: str
    state: str = "waiting"
    container_id: str = ""
    image_id: str = ""
    reason: str = ""
    message: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    restart_count: int = 0
    ready: bool = False
    last_terminated: dict[str, Any] | None = None
    started: bool | None = None  # None: running means started (no startup probe)

    def state_dict(self) -> dict[str, Any]:
        if self.state == "running":
            return {"running": {"startedAt": rfc3339(self.started_at or 0)}}
        if self.state == "terminated":
            t: dict[str, Any] = {
                "exitCode": self.exit_code or 0,
                "reason": self.reason or ("Completed" if not self.exit_code else "Error"),
            }
            if self.message:
                t["message"] = self.message
            if self.started_at:
                t["startedAt"] = rfc3339(self.started_at)
            if self.finished_at:
                t["finishedAt"] = rfc3339(self.finished_at)
            if self.container_id:
                t["containerID"] = self.container_id
            return {"terminated": t}
        w: dict[str, Any] = {"reason": self.reason or "ContainerCreating"}
        if self.message:
            w["message"] = self.message
        return {"waiting": w}

    def status_dict(self, container_spec: dict[str, Any]) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.container_id:
            d["containerID"] = self.container_id
        d["image"] = self.image
        d["imageID"] = self.image_id
        d["lastState"] = {"terminated": self.last_terminated} if self.last_terminated else {}
        d["name"] = self.name
        d["ready"] = self.ready
        d["restartCount"] = self.restart_count
        d["started"] = self.state == "running" and self.started is not False
        d["state"] = self.state_dict()
        mounts = []
        for vm in container_spec.get("volumeMounts") or []:
            m: dict[str, Any] = {"mountPath": vm["mountPath"], "name": vm["name"]}
            if vm.get("readOnly"):
                m["readOnly"] = True
                m["recursiveReadOnly"] = "Disabled"
            mounts.append(m)
        if mounts:
            d["volumeMounts"] = mounts
        return d


def pod_phase(restart_policy: str, views: list[ContainerView], *, terminal: bool) -> str:
    """kubelet ``getPhase`` for a pod without init containers.

    ``terminal``: the pod is being torn down (deleted) and no container will be
    started again, so a restarting pod is reported Failed or Succeeded.
    """
    running = waiting = stopped = succeeded = 0
    for v in views:
        if v.state == "running":
            running += 1
        elif v.state == "terminated":
            stopped += 1
            if v.exit_code == 0:
                succeeded += 1
        elif v.last_terminated is not None:
            stopped += 1  # waiting to restart after an exit
            if v.last_terminated.get("exitCode") == 0:
                succeeded += 1
        else:
            waiting += 1
    if terminal and running == 0:
        return "Succeeded" if views and stopped == succeeded and waiting == 0 else "Failed"
    if waiting > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if stopped > 0:
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        return "Failed" if restart_policy == "Never" else "Running"
    return "Pending"


def _condition(
    ctype: str,
    ok: bool,
    now: str,
    previous: dict[str, dict[str, Any]],
    *,
    reason: str = "",
    message: str = "",
) -> dict[str, Any]:
    status = "True" if ok else "False"
    prev = previous.get(ctype)
    since = now
    if prev is not None and prev.get("status") == status and prev.get("lastTransitionTime"):
        since = prev["lastTransitionTime"]
    c: dict[str, Any] = {"lastProbeTime": None, "lastTransitionTime": since}
    if message:
        c["message"] = message
    if reason:
        c["reason"] = reason
    c["status"] = status
    c["type"] = ctype
    return c


def build_status(
    pod: dict[str, Any],
    views: list[ContainerView],
    *,
    sandbox_ready: bool,
    pod_ip: str,
    host_ip: str,
    start_time: float,
    now: float,
    previous: dict[str, Any] | None,
    terminal: bool = False,
) -> dict[str, Any]:
    """The pod's status as kubelet would report it."""
    spec = pod.get("spec") or {}
    restart_policy = spec.get("restartPolicy") or "Always"
    phase = pod_phase(restart_policy, views, terminal=terminal)
    stamp = rfc3339(now)
    prev_conds = {c.get("type", ""): c for c in (previous or {}).get("conditions") or []}
    unready = [v.name for v in views if not v.ready]
    if phase in ("Failed", "Succeeded"):
        reason, message = ("PodFailed" if phase == "Failed" else "PodCompleted"), ""
    elif unready:
        reason = "ContainersNotReady"
        message = f"containers with unready status: [{' '.join(unready)}]"
    else:
        reason, message = "", ""
    ready = not unready and phase == "Running"
    conditions = [
        _condition("PodReadyToStartContainers", sandbox_ready and not terminal, stamp, prev_conds),
        _condition("Initialized", True, stamp, prev_conds),
        _condition("Ready", ready, stamp, prev_conds, reason=reason, message=message),
        _condition("ContainersReady", ready, stamp, prev_conds, reason=reason, message=message),
        _condition("PodScheduled", True, stamp, prev_conds),
    ]
    specs = {c["name"]: c for c in spec.get("containers") or []}
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": conditions,
        "containerStatuses": [v.status_dict(specs.get(v.name, {})) for v in views],
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": rfc3339(start_time),
    }
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    return status


def _strip_nulls(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _conditions_patch(
    old: list[dict[str, Any]], new: list[dict[str, Any]]
) -> list[dict[str, Any]] | None:
    by_type = {c.get("type"): _strip_nulls(c) for c in old}
    changed: list[dict[str, Any]] = []
    for cond in new:
        cur = _strip_nulls(cond)
        prev = by_type.get(cond["type"])
        if prev == cur:
            continue
        if prev is None:
            changed.append(cond)
            continue
        delta: dict[str, Any] = {}
        for k in sorted(set(prev) | set(cur)):
            if k == "type":
                continue
            if prev.get(k) != cur.get(k):
                delta[k] = cur.get(k)
        delta["type"] = cond["type"]
        changed.append(delta)
    new_types = {c["type"] for c in new}
    if not changed and new_types >= set(by_type):
        return None
    return changed


def status_patch(
    uid: str, old: dict[str, Any] | None, new: dict[str, Any]
) -> dict[str, Any] | None:
    """The strategic-merge patch from ``old`` to ``new`` (``None``: nothing changed)."""
    old = old or {}
    st: dict[str, Any] = {}
    for key, value in new.items():
        if key == "conditions":
            conds = _conditions_patch(old.get("conditions") or [], value)
            if conds is not None:
                st["$setElementOrder/conditions"] = [{"type": c["type"]} for c in value]
                st["conditions"] = conds
        elif old.get(key) != value:
            st[key] = value
    for key in MANAGED_KEYS:
        if key in old and key not in new and old[key] is not None:
            st[key] = None
    if not st:
        return None
    return {"metadata": {"uid": uid}, "status": st}
