"""Pod spec -> CRI sandbox and container configs.

Mirrors kubelet's ``kuberuntime_sandbox.go`` (generatePodSandboxConfig) and
``kuberuntime_container_linux.go`` (generateLinuxContainerConfig): namespaces
(host network, shared or private PID), port mappings, CPU shares/quota and
memory limit from the container's resources, security context basics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgecore.edged import labels as L
from edgecore.edged.cri import pb
from edgecore.edged.errors import PodSpecError
from edgecore.edged.podconfig import PreparedVolume, expand_vars
from edgecore.edged.quantity import cpu_millis, to_bytes

__all__ = ["container_config", "qos_class", "sandbox_config"]

CPU_PERIOD = 100_000  # CFS period in µs, kubelet's default
MIN_SHARES = 2
MIN_QUOTA = 1_000


def _meta(pod: dict[str, Any]) -> dict[str, Any]:
    return pod.get("metadata") or {}


def _spec(pod: dict[str, Any]) -> dict[str, Any]:
    return pod.get("spec") or {}


def host_network(pod: dict[str, Any]) -> bool:
    return bool(_spec(pod).get("hostNetwork"))


def qos_class(pod: dict[str, Any]) -> str:
    """Guaranteed / Burstable / BestEffort, as the API server computes it."""
    containers = _spec(pod).get("containers") or []
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim or (r in req and req[r] != lim[r]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _protocol(name: str) -> Any:
    return {"TCP": pb.TCP, "UDP": pb.UDP, "SCTP": pb.SCTP}.get((name or "TCP").upper(), pb.TCP)


def sandbox_config(
    pod: dict[str, Any], *, node_name: str, attempt: int, log_directory: Path
) -> Any:
    meta, spec = _meta(pod), _spec(pod)
    ports = []
    for c in spec.get("containers") or []:
        for p in c.get("ports") or []:
            if not p.get("containerPort"):
                continue
            ports.append(
                pb.PortMapping(
                    protocol=_protocol(p.get("protocol", "TCP")),
                    container_port=int(p["containerPort"]),
                    host_port=int(p.get("hostPort") or 0),
                    host_ip=p.get("hostIP", ""),
                )
            )
    ns = pb.NamespaceOption(
        network=pb.NODE if spec.get("hostNetwork") else pb.POD,
        pid=pb.NODE
        if spec.get("hostPID")
        else (pb.POD if spec.get("shareProcessNamespace") else pb.CONTAINER),
        ipc=pb.NODE if spec.get("hostIPC") else pb.POD,
    )
    hostname = spec.get("hostname") or meta.get("name", "")
    if spec.get("hostNetwork"):
        hostname = ""  # the runtime uses the node's hostname
    return pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(
            name=meta.get("name", ""),
            uid=meta.get("uid", ""),
            namespace=meta.get("namespace", ""),
            attempt=attempt,
        ),
        hostname=hostname[:63],
        log_directory=str(log_directory),
        port_mappings=ports,
        labels=L.pod_labels(pod, node_name),
        annotations={str(k): str(v) for k, v in (meta.get("annotations") or {}).items()},
        linux=pb.LinuxPodSandboxConfig(
            security_context=pb.LinuxSandboxSecurityContext(namespace_options=ns),
        ),
    )


def _resources(container: dict[str, Any], qos: str) -> Any:
    res = container.get("resources") or {}
    limits, requests = res.get("limits") or {}, res.get("requests") or {}
    out = pb.LinuxContainerResources()
    try:
        cpu_req = requests.get("cpu", limits.get("cpu"))
        out.cpu_shares = (
            max(MIN_SHARES, cpu_millis(cpu_req) * 1024 // 1000) if cpu_req else MIN_SHARES
        )
        if "cpu" in limits:
            out.cpu_period = CPU_PERIOD
            out.cpu_quota = max(MIN_QUOTA, cpu_millis(limits["cpu"]) * CPU_PERIOD // 1000)
        if "memory" in limits:
            out.memory_limit_in_bytes = to_bytes(limits["memory"])
    except ValueError as exc:
        raise PodSpecError(
            f"container {container.get('name')}: bad resource quantity: {exc}"
        ) from exc
    # kubelet's policy (qos/policy.go); containerd clamps it (restrict_oom_score_adj).
    out.oom_score_adj = {"Guaranteed": -997, "BestEffort": 1000}.get(qos, 500)
    return out


def _security(container: dict[str, Any], pod: dict[str, Any], ns: Any) -> Any:
    sc = container.get("securityContext") or {}
    psc = _spec(pod).get("securityContext") or {}
    out = pb.LinuxContainerSecurityContext(namespace_options=ns)
    out.privileged = bool(sc.get("privileged"))
    run_as_user = sc.get("runAsUser", psc.get("runAsUser"))
    if run_as_user is not None:
        out.run_as_user.value = int(run_as_user)
    run_as_group = sc.get("runAsGroup", psc.get("runAsGroup"))
    if run_as_group is not None:
        out.run_as_group.value = int(run_as_group)
    out.readonly_rootfs = bool(sc.get("readOnlyRootFilesystem"))
    caps = sc.get("capabilities") or {}
    if caps:
        out.capabilities.add_capabilities.extend(caps.get("add") or [])
        out.capabilities.drop_capabilities.extend(caps.get("drop") or [])
    if sc.get("allowPrivilegeEscalation") is False:
        out.no_new_privs = True
    for g in psc.get("supplementalGroups") or []:
        out.supplemental_groups.append(int(g))
    return out


def container_config(
    pod: dict[str, Any],
    container: dict[str, Any],
    *,
    node_name: str,
    attempt: int,
    image: str,
    env: list[tuple[str, str]],
    volumes: dict[str, PreparedVolume],
) -> Any:
    """The CRI ContainerConfig of ``container`` (``attempt`` = its restart count)."""
    spec = _spec(pod)
    env_map = dict(env)
    mounts = []
    for vm in container.get("volumeMounts") or []:
        vol = volumes.get(vm["name"])
        if vol is None:
            raise PodSpecError(f"container {container['name']}: no volume named {vm['name']!r}")
        host = vol.host_path
        sub = vm.get("subPath") or ""
        if sub:
            if Path(sub).is_absolute() or ".." in Path(sub).parts:
                raise PodSpecError(f"subPath {sub!r} must stay inside the volume")
            host = host / sub
        mounts.append(
            pb.Mount(
                container_path=vm["mountPath"],
                host_path=str(host),
                readonly=bool(vm.get("readOnly")) or vol.read_only,
            )
        )
    ns = pb.NamespaceOption(
        network=pb.NODE if spec.get("hostNetwork") else pb.POD,
        pid=pb.NODE
        if spec.get("hostPID")
        else (pb.POD if spec.get("shareProcessNamespace") else pb.CONTAINER),
        ipc=pb.NODE if spec.get("hostIPC") else pb.POD,
    )
    meta = _meta(pod)
    grace = spec.get("terminationGracePeriodSeconds", 30)
    return pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=container["name"], attempt=attempt),
        image=pb.ImageSpec(image=image),
        command=[expand_vars(str(c), env_map) for c in container.get("command") or []],
        args=[expand_vars(str(a), env_map) for a in container.get("args") or []],
        working_dir=container.get("workingDir", ""),
        envs=[pb.KeyValue(key=k, value=v) for k, v in env],
        mounts=mounts,
        labels={
            L.POD_NAME: meta.get("name", ""),
            L.POD_NAMESPACE: meta.get("namespace", ""),
            L.POD_UID: meta.get("uid", ""),
            L.CONTAINER_NAME: container["name"],
            **L.owned(node_name),
        },
        annotations={
            L.CONTAINER_HASH: L.container_hash(container),
            L.RESTART_COUNT: str(attempt),
            L.GRACE_PERIOD: str(grace),
        },
        log_path=f"{container['name']}/{attempt}.log",
        stdin=bool(container.get("stdin")),
        stdin_once=bool(container.get("stdinOnce")),
        tty=bool(container.get("tty")),
        linux=pb.LinuxContainerConfig(
            resources=_resources(container, qos_class(pod)),
            security_context=_security(container, pod, ns),
        ),
    )
