"""Server-side printing: ``meta.k8s.io/v1 Table`` answers for clients that ask for them
(``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``, as kubectl get does), with the
columns kube-apiserver's printers use for the same kinds (pkg/printers/internalversion)
and a CRD's additionalPrinterColumns. Pure: ``now`` is passed in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from devkube.resources import ResourceInfo

Obj = dict[str, Any]
Column = tuple[str, str, str, int, Callable[[Obj, float], Any]]  # name, type, format, priority


def wants_table(accept: str) -> bool:
    return any(
        "as=Table" in part and "g=meta.k8s.io" in part and "v=v1beta1" not in part
        for part in accept.split(",")
    )


def _parse_ts(value: Any) -> float | None:
    if not value:
        return None
    try:
        return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    if seconds < -1:
        return "<invalid>"
    s = max(int(seconds), 0)
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if h < 24 * 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    if h < 24 * 365 * 2:
        return f"{d}d"
    y = d // 365
    if y < 8:
        return f"{y}y{d % 365}d" if d % 365 else f"{y}y"
    return f"{y}y"


def _age(obj: Obj, now: float) -> str:
    ts = _parse_ts((obj.get("metadata") or {}).get("creationTimestamp"))
    return "<unknown>" if ts is None else human_duration(now - ts)


def _name(obj: Obj, _now: float) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _get(obj: Any, path: str) -> Any:
    cur = obj
    for seg in path.strip(".").split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(seg)
    return cur


def _pod_ready(pod: Obj, _now: float) -> str:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or [])
    return f"{sum(1 for c in statuses if c.get('ready'))}/{total}"


def _pod_status(pod: Obj, _now: float) -> str:
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for c in status.get("containerStatuses") or []:
        state = c.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif (state.get("terminated") or {}).get("reason"):
            reason = state["terminated"]["reason"]
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        reason = "Terminating"
    return str(reason)


def _pod_restarts(pod: Obj, _now: float) -> int:
    return sum(int(c.get("restartCount") or 0)
               for c in (pod.get("status") or {}).get("containerStatuses") or [])


def _readiness_gates(pod: Obj, _now: float) -> str:
    gates = (pod.get("spec") or {}).get("readinessGates") or []
    if not gates:
        return "<none>"
    conds = {c.get("type"): c.get("status")
             for c in (pod.get("status") or {}).get("conditions") or []}
    ready = sum(1 for g in gates if conds.get(g.get("conditionType")) == "True")
    return f"{ready}/{len(gates)}"


def _node_status(node: Obj, _now: float) -> str:
    ready = next((c for c in (node.get("status") or {}).get("conditions") or []
                  if c.get("type") == "Ready"), None)
    status = "Unknown"
    if ready is not None:
        status = "Ready" if ready.get("status") == "True" else "NotReady"
    if (node.get("spec") or {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    return status


def _node_address(kind: str) -> Callable[[Obj, float], str]:
    def get(node: Obj, _now: float) -> str:
        for addr in (node.get("status") or {}).get("addresses") or []:
            if addr.get("type") == kind:
                return str(addr.get("address", ""))
        return "<none>"

    return get


def _node_roles(node: Obj, _now: float) -> str:
    labels = (node.get("metadata") or {}).get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels
                   if k.startswith("node-role.kubernetes.io/") and "/" in k)
    return ",".join(r for r in roles if r) or "<none>"


def _svc_ports(svc: Obj, _now: float) -> str:
    ports = []
    for p in (svc.get("spec") or {}).get("ports") or []:
        text = str(p.get("port"))
        if p.get("nodePort"):
            text += f":{p['nodePort']}"
        ports.append(f"{text}/{p.get('protocol', 'TCP')}")
    return ",".join(ports) or "<none>"


def _endpoints(ep: Obj, _now: float) -> str:
    out = []
    for subset in ep.get("subsets") or []:
        ports = [p.get("port") for p in subset.get("ports") or []] or [None]
        for addr in subset.get("addresses") or []:
            for port in ports:
                out.append(f"{addr.get('ip')}:{port}" if port else str(addr.get("ip")))
    return ",".join(out) or "<none>"


def _count(*fields: str) -> Callable[[Obj, float], int]:
    return lambda obj, _now: sum(len(obj.get(f) or {}) for f in fields)


def _field(path: str, default: Any = "<none>") -> Callable[[Obj, float], Any]:
    def get(obj: Obj, _now: float) -> Any:
        value = _get(obj, path)
        return default if value in (None, "") else value

    return get


def _event_last_seen(ev: Obj, now: float) -> str:
    ts = _parse_ts(ev.get("lastTimestamp") or ev.get("eventTime")
                   or (ev.get("metadata") or {}).get("creationTimestamp"))
    return "<unknown>" if ts is None else human_duration(now - ts)


def _event_object(ev: Obj, _now: float) -> str:
    ref = ev.get("involvedObject") or {}
    return f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}"


def _deployment_ready(dep: Obj, _now: float) -> str:
    wanted = _get(dep, "spec.replicas")
    return f"{_get(dep, 'status.readyReplicas') or 0}/{1 if wanted is None else wanted}"


NAME: Column = ("Name", "string", "name", 0, _name)
AGE: Column = ("Age", "string", "", 0, _age)

COLUMNS: dict[str, list[Column]] = {
    "Pod": [NAME, ("Ready", "string", "", 0, _pod_ready), ("Status", "string", "", 0, _pod_status),
            ("Restarts", "string", "", 0, _pod_restarts), AGE,
            ("IP", "string", "", 1, _field("status.podIP")),
            ("Node", "string", "", 1, _field("spec.nodeName")),
            ("Nominated Node", "string", "", 1, _field("status.nominatedNodeName")),
            ("Readiness Gates", "string", "", 1, _readiness_gates)],
    "Node": [NAME, ("Status", "string", "", 0, _node_status),
             ("Roles", "string", "", 0, _node_roles), AGE,
             ("Version", "string", "", 0, _field("status.nodeInfo.kubeletVersion", "")),
             ("Internal-IP", "string", "", 1, _node_address("InternalIP")),
             ("External-IP", "string", "", 1, _node_address("ExternalIP")),
             ("OS-Image", "string", "", 1, _field("status.nodeInfo.osImage", "<unknown>")),
             ("Kernel-Version", "string", "", 1,
              _field("status.nodeInfo.kernelVersion", "<unknown>")),
             ("Container-Runtime", "string", "", 1,
              _field("status.nodeInfo.containerRuntimeVersion", "<unknown>"))],
    "Namespace": [NAME, ("Status", "string", "", 0, _field("status.phase", "")), AGE],
    "ConfigMap": [NAME, ("Data", "integer", "", 0, _count("data", "binaryData")), AGE],
    "Secret": [NAME, ("Type", "string", "", 0, _field("type", "")),
               ("Data", "string", "", 0, _count("data")), AGE],
    "Service": [NAME, ("Type", "string", "", 0, _field("spec.type", "")),
                ("Cluster-IP", "string", "", 0, _field("spec.clusterIP", "")),
                ("External-IP", "string", "", 0, lambda o, n: "<none>"),
                ("Port(s)", "string", "", 0, _svc_ports), AGE],
    "Endpoints": [NAME, ("Endpoints", "string", "", 0, _endpoints), AGE],
    "ServiceAccount": [NAME, ("Secrets", "string", "", 0, _count("secrets")), AGE],
    "Event": [("Last Seen", "string", "", 0, _event_last_seen),
              ("Type", "string", "", 0, _field("type", "")),
              ("Reason", "string", "", 0, _field("reason", "")),
              ("Object", "string", "", 0, _event_object),
              ("Message", "string", "", 0, _field("message", ""))],
    "Lease": [NAME, ("Holder", "string", "", 0, _field("spec.holderIdentity", "")), AGE],
    "Deployment": [NAME,
                   ("Ready", "string", "", 0, _deployment_ready),
                   ("Up-to-date", "integer", "", 0, _field("status.updatedReplicas", 0)),
                   ("Available", "integer", "", 0, _field("status.availableReplicas", 0)), AGE],
    "CustomResourceDefinition": [NAME, ("Created At", "date", "", 0,
                                        _field("metadata.creationTimestamp", ""))],
}


def columns_for(info: ResourceInfo) -> list[Column]:
    if info.crd is not None and info.printer_columns:
        cols: list[Column] = [NAME]
        for name, type_, path in info.printer_columns:
            if type_ == "date":
                cols.append((name, "date", "", 0, _date_column(path)))
            else:
                cols.append((name, type_, "", 0, _field(path, None)))
        return cols
    if info.crd is None:
        return COLUMNS.get(info.kind, [NAME, AGE])
    return [NAME, AGE]


def _date_column(path: str) -> Callable[[Obj, float], Any]:
    def get(obj: Obj, now: float) -> Any:
        ts = _parse_ts(_get(obj, path))
        return None if ts is None else human_duration(now - ts)

    return get


def _row_object(obj: Obj, include: str) -> Obj | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata") or {}}


def table(
    info: ResourceInfo,
    objs: list[Obj],
    *,
    now: float,
    list_meta: dict[str, Any] | None = None,
    include: str = "Metadata",
    headers: bool = True,
) -> Obj:
    cols = columns_for(info)
    rows = []
    for obj in objs:
        row: Obj = {"cells": [fn(obj, now) for *_, fn in cols]}
        ref = _row_object(obj, include)
        if ref is not None:
            row["object"] = ref
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta or {},
        "columnDefinitions": [
            {"name": name, "type": type_, "format": fmt, "description": "", "priority": prio}
            for name, type_, fmt, prio, _ in cols
        ] if headers else None,
        "rows": rows,
    }
