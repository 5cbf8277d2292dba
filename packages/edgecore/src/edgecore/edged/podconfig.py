"""What a container is given: environment variables and volumes.

Mirrors kubelet's ``kubelet_pods.go`` (makeEnvironmentVariables, $(VAR)
expansion) and the configmap/secret/emptyDir/hostPath/projected volume
plugins. ConfigMaps, Secrets and ServiceAccount tokens come from metaclient
(local store first, then the cloud; protocol.md 6.4), cached for one sync.

Volume files are written the way kubelet's AtomicWriter does: into a fresh
``..<timestamp>`` directory, then the ``..data`` symlink is swapped with a
rename, and each top-level name is a symlink through ``..data``. A container
that has the directory mounted therefore sees an update all at once, and an
updated ConfigMap reaches running containers without a restart.

Layout under ``<root>/pods/<pod uid>/volumes/<plugin>/<volume name>``, with the
plugin directory names kubelet uses (``kubernetes.io~configmap`` ...).
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecore.edged import metasource
from edgecore.edged.errors import ConfigSourceMissing, PodSpecError
from edgecore.edged.quantity import cpu_millis, to_bytes

__all__ = [
    "ConfigSources",
    "PreparedVolume",
    "expand_vars",
    "prepare_volumes",
    "resolve_env",
]

DEFAULT_MODE = 0o644
_DATA = "..data"


@dataclass
class ConfigSources:
    """ConfigMaps and Secrets of one namespace, fetched once per pod sync."""

    meta: metasource.MetaSource
    namespace: str
    _cache: dict[tuple[str, str], dict[str, Any] | None] = field(default_factory=dict)

    async def _get(self, kind: str, name: str, optional: bool) -> dict[str, Any] | None:
        key = (kind, name)
        if key not in self._cache:
            try:
                if kind == "configmap":
                    obj: dict[str, Any] | None = await self.meta.get_configmap(self.namespace, name)
                else:
                    obj = await self.meta.get_secret(self.namespace, name)
            except Exception as exc:
                if metasource.is_not_found(exc):
                    obj = None
                else:
                    raise ConfigSourceMissing(
                        f"cannot get {kind} {self.namespace}/{name}: {exc}"
                    ) from exc
            self._cache[key] = obj
        obj = self._cache[key]
        if obj is None and not optional:
            raise ConfigSourceMissing(f'{kind} "{name}" not found')
        return obj

    async def configmap_data(self, name: str, *, optional: bool = False) -> dict[str, bytes] | None:
        obj = await self._get("configmap", name, optional)
        if obj is None:
            return None
        data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
        for k, v in (obj.get("binaryData") or {}).items():
            data[k] = base64.b64decode(v)
        return data

    async def secret_data(self, name: str, *, optional: bool = False) -> dict[str, bytes] | None:
        obj = await self._get("secret", name, optional)
        if obj is None:
            return None
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        for k, v in (obj.get("stringData") or {}).items():
            data[k] = str(v).encode()
        return data


# --- environment ------------------------------------------------------------------

_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand_vars(text: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: unknown references stay, ``$$`` is a ``$``."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env.get(name, m.group(0))

    return _VAR.sub(sub, text)


def field_value(
    pod: dict[str, Any], path: str, *, node_name: str, host_ip: str, pod_ip: str
) -> str:
    """The value of a downward-API ``fieldRef.fieldPath``."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName") or node_name,
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
    }
    if path in simple:
        return str(simple[path])
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        items = (meta.get(path.split(".")[1]) or {}).items()
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items))
    raise PodSpecError(f"unsupported fieldRef {path!r}")


def _resource_value(container: dict[str, Any], ref: dict[str, Any]) -> str:
    resource = ref.get("resource", "")
    kind, _, what = resource.partition(".")
    value = ((container.get("resources") or {}).get(kind) or {}).get(what)
    divisor = ref.get("divisor") or "1"
    if value is None:
        return "0"
    if what == "cpu":
        millis = cpu_millis(value)
        div = cpu_millis(divisor)
        return str(-(-millis // max(div, 1)))
    return str(-(-to_bytes(value) // max(to_bytes(divisor), 1)))


async def resolve_env(
    pod: dict[str, Any],
    container: dict[str, Any],
    sources: ConfigSources,
    *,
    node_name: str,
    host_ip: str,
    pod_ip: str,
) -> list[tuple[str, str]]:
    """The container's environment, in kubelet's order (envFrom, then env).

    Raises:
        ConfigSourceMissing: a required configmap/secret or key is not available
            (kubelet's CreateContainerConfigError).
        PodSpecError: an unsupported reference.
    """
    env: dict[str, str] = {}
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix", "")
        if "configMapRef" in src:
            ref = src["configMapRef"]
            data = await sources.configmap_data(ref["name"], optional=bool(ref.get("optional")))
        elif "secretRef" in src:
            ref = src["secretRef"]
            data = await sources.secret_data(ref["name"], optional=bool(ref.get("optional")))
        else:
            raise PodSpecError(f"unsupported envFrom source {sorted(src)}")
        for k, v in (data or {}).items():
            env[prefix + k] = v.decode(errors="replace")
    for var in container.get("env") or []:
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = expand_vars(str(var.get("value", "")), env)
            continue
        vf = var["valueFrom"]
        if "configMapKeyRef" in vf or "secretKeyRef" in vf:
            is_cm = "configMapKeyRef" in vf
            ref = vf["configMapKeyRef" if is_cm else "secretKeyRef"]
            optional = bool(ref.get("optional"))
            getter = sources.configmap_data if is_cm else sources.secret_data
            data = await getter(ref["name"], optional=optional)
            if data is None or ref["key"] not in data:
                if optional:
                    continue
                kind = "configmap" if is_cm else "secret"
                raise ConfigSourceMissing(
                    f"couldn't find key {ref['key']} in {kind} {sources.namespace}/{ref['name']}"
                )
            env[name] = data[ref["key"]].decode(errors="replace")
        elif "fieldRef" in vf:
            env[name] = field_value(
                pod,
                vf["fieldRef"]["fieldPath"],
                node_name=node_name,
                host_ip=host_ip,
                pod_ip=pod_ip,
            )
        elif "resourceFieldRef" in vf:
            env[name] = _resource_value(container, vf["resourceFieldRef"])
        else:
            raise PodSpecError(f"unsupported valueFrom {sorted(vf)} for env {name}")
    return list(env.items())


# --- volumes ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreparedVolume:
    """A volume ready to be bind-mounted: the host path and whether it is read-only."""

    host_path: Path
    read_only: bool


def _items(
    data: dict[str, bytes], items: list[dict[str, Any]] | None, default_mode: int, *, what: str
) -> dict[str, tuple[bytes, int]]:
    if not items:
        return {k: (v, default_mode) for k, v in data.items()}
    out: dict[str, tuple[bytes, int]] = {}
    for item in items:
        if item["key"] not in data:
            raise ConfigSourceMissing(f"{what}: key {item['key']!r} not found")
        out[item["path"]] = (data[item["key"]], int(item.get("mode", default_mode)))
    return out


def _check_rel(path: str) -> None:
    parts = Path(path).parts
    if not path or Path(path).is_absolute() or ".." in parts or path.startswith(".."):
        raise PodSpecError(f"volume item path {path!r} must be relative and stay inside the volume")


def write_atomic(target: Path, files: dict[str, tuple[bytes, int]]) -> bool:
    """Publish ``files`` (relative path -> (content, mode)) in ``target`` atomically.

    Returns:
        True if anything changed.
    """
    for rel in files:
        _check_rel(rel)
    target.mkdir(parents=True, exist_ok=True)
    data_link = target / _DATA
    current = data_link.resolve() if data_link.is_symlink() else None
    if current is not None and _same_content(current, files):
        return False
    stamp = target / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.monotonic_ns()}"
    stamp.mkdir()
    for rel, (content, mode) in files.items():
        p = stamp / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
        os.chmod(p, mode)
    tmp_link = target / "..data_tmp"
    if tmp_link.is_symlink():
        tmp_link.unlink()
    tmp_link.symlink_to(stamp.name)
    os.replace(tmp_link, data_link)
    tops = {Path(rel).parts[0] for rel in files}
    for top in tops:
        link = target / top
        if not link.is_symlink():
            link.symlink_to(f"{_DATA}/{top}")
    for entry in target.iterdir():
        if entry.name.startswith(".."):
            if entry.is_dir() and not entry.is_symlink() and entry != stamp:
                shutil.rmtree(entry, ignore_errors=True)
        elif entry.is_symlink() and entry.name not in tops:
            entry.unlink()
    return True


def _same_content(current: Path, files: dict[str, tuple[bytes, int]]) -> bool:
    existing = {str(p.relative_to(current)) for p in current.rglob("*") if p.is_file()}
    if existing != set(files):
        return False
    for rel, (content, mode) in files.items():
        p = current / rel
        if p.read_bytes() != content or (p.stat().st_mode & 0o7777) != mode:
            return False
    return True


def _hostpath(vol: dict[str, Any]) -> Path:
    spec = vol["hostPath"]
    path = Path(spec["path"])
    kind = spec.get("type", "")
    if kind == "DirectoryOrCreate":
        path.mkdir(parents=True, exist_ok=True)
    elif kind == "FileOrCreate":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
    elif kind == "Directory" and not path.is_dir():
        raise PodSpecError(f"hostPath {path} is not a directory")
    elif kind == "File" and not path.is_file():
        raise PodSpecError(f"hostPath {path} is not a file")
    elif kind in ("Socket", "CharDevice", "BlockDevice") and not path.exists():
        raise PodSpecError(f"hostPath {path} does not exist")
    return path


async def _projected(
    pod: dict[str, Any],
    vol: dict[str, Any],
    sources: ConfigSources,
    meta: metasource.MetaSource,
    *,
    node_name: str,
    host_ip: str,
    pod_ip: str,
) -> dict[str, tuple[bytes, int]]:
    spec = vol["projected"]
    default_mode = int(spec.get("defaultMode", DEFAULT_MODE))
    meta_ = pod.get("metadata") or {}
    files: dict[str, tuple[bytes, int]] = {}
    for src in spec.get("sources") or []:
        if "serviceAccountToken" in src:
            sat = src["serviceAccountToken"]
            sa = (pod.get("spec") or {}).get("serviceAccountName") or "default"
            request = {
                "metadata": {"creationTimestamp": None},
                "spec": {
                    "audiences": [sat["audience"]] if sat.get("audience") else None,
                    "expirationSeconds": int(sat.get("expirationSeconds", 3607)),
                    "boundObjectRef": {
                        "kind": "Pod",
                        "apiVersion": "v1",
                        "name": meta_.get("name", ""),
                        "uid": meta_.get("uid", ""),
                    },
                },
                "status": {"token": "", "expirationTimestamp": None},
            }
            try:
                resp = await meta.get_service_account_token(meta_.get("namespace", ""), sa, request)
            except Exception as exc:
                raise ConfigSourceMissing(f"service account token for {sa}: {exc}") from exc
            token = ((resp or {}).get("status") or {}).get("token", "")
            files[sat.get("path", "token")] = (str(token).encode(), default_mode)
        elif "configMap" in src:
            ref = src["configMap"]
            data = await sources.configmap_data(ref["name"], optional=bool(ref.get("optional")))
            if data is not None:
                files.update(
                    _items(data, ref.get("items"), default_mode, what=f"configmap {ref['name']}")
                )
        elif "secret" in src:
            ref = src["secret"]
            data = await sources.secret_data(ref["name"], optional=bool(ref.get("optional")))
            if data is not None:
                files.update(
                    _items(data, ref.get("items"), default_mode, what=f"secret {ref['name']}")
                )
        elif "downwardAPI" in src:
            for item in src["downwardAPI"].get("items") or []:
                if "fieldRef" not in item:
                    raise PodSpecError("downwardAPI resourceFieldRef is not supported")
                value = field_value(
                    pod,
                    item["fieldRef"]["fieldPath"],
                    node_name=node_name,
                    host_ip=host_ip,
                    pod_ip=pod_ip,
                )
                files[item["path"]] = (value.encode(), int(item.get("mode", default_mode)))
        else:
            raise PodSpecError(f"unsupported projected source {sorted(src)}")
    return files


async def prepare_volumes(
    pod: dict[str, Any],
    pod_dir: Path,
    sources: ConfigSources,
    meta: metasource.MetaSource,
    *,
    node_name: str,
    host_ip: str,
    pod_ip: str,
) -> dict[str, PreparedVolume]:
    """Write (or refresh) every volume of ``pod`` under ``pod_dir``.

    Raises:
        ConfigSourceMissing: a configmap/secret/token is not available yet.
        PodSpecError: an unsupported volume type or a bad path.
    """
    out: dict[str, PreparedVolume] = {}
    vol_root = pod_dir / "volumes"
    for vol in (pod.get("spec") or {}).get("volumes") or []:
        name = vol["name"]
        if "/" in name or name.startswith("."):
            raise PodSpecError(f"bad volume name {name!r}")
        if "configMap" in vol:
            ref = vol["configMap"]
            mode = int(ref.get("defaultMode", DEFAULT_MODE))
            data = await sources.configmap_data(ref["name"], optional=bool(ref.get("optional")))
            files = _items(data or {}, ref.get("items"), mode, what=f"configmap {ref['name']}")
            target = vol_root / "kubernetes.io~configmap" / name
            await asyncio.to_thread(write_atomic, target, files)
            out[name] = PreparedVolume(target, True)
        elif "secret" in vol:
            ref = vol["secret"]
            mode = int(ref.get("defaultMode", DEFAULT_MODE))
            sname = ref["secretName"]
            data = await sources.secret_data(sname, optional=bool(ref.get("optional")))
            files = _items(data or {}, ref.get("items"), mode, what=f"secret {sname}")
            target = vol_root / "kubernetes.io~secret" / name
            await asyncio.to_thread(write_atomic, target, files)
            out[name] = PreparedVolume(target, True)
        elif "projected" in vol:
            files = await _projected(
                pod, vol, sources, meta, node_name=node_name, host_ip=host_ip, pod_ip=pod_ip
            )
            target = vol_root / "kubernetes.io~projected" / name
            await asyncio.to_thread(write_atomic, target, files)
            out[name] = PreparedVolume(target, True)
        elif "downwardAPI" in vol:
            files = await _projected(
                pod,
                {
                    "projected": {
                        "sources": [vol],
                        "defaultMode": vol["downwardAPI"].get("defaultMode", DEFAULT_MODE),
                    }
                },
                sources,
                meta,
                node_name=node_name,
                host_ip=host_ip,
                pod_ip=pod_ip,
            )
            target = vol_root / "kubernetes.io~downward-api" / name
            await asyncio.to_thread(write_atomic, target, files)
            out[name] = PreparedVolume(target, True)
        elif "emptyDir" in vol:
            target = vol_root / "kubernetes.io~empty-dir" / name
            await asyncio.to_thread(target.mkdir, parents=True, exist_ok=True)
            await asyncio.to_thread(os.chmod, target, 0o777)
            out[name] = PreparedVolume(target, False)
        elif "hostPath" in vol:
            out[name] = PreparedVolume(await asyncio.to_thread(_hostpath, vol), False)
        else:
            kinds = sorted(k for k in vol if k != "name")
            raise PodSpecError(f"volume {name}: unsupported volume type {kinds}")
    return out


def references(pod: dict[str, Any], kind: str, name: str) -> bool:
    """Whether ``pod`` uses configmap/secret ``name`` (``kind`` is configmap|secret)."""
    spec = pod.get("spec") or {}
    for vol in spec.get("volumes") or []:
        if kind == "configmap" and (vol.get("configMap") or {}).get("name") == name:
            return True
        if kind == "secret" and (vol.get("secret") or {}).get("secretName") == name:
            return True
        for src in (vol.get("projected") or {}).get("sources") or []:
            key = "configMap" if kind == "configmap" else "secret"
            if (src.get(key) or {}).get("name") == name:
                return True
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        for src in c.get("envFrom") or []:
            key = "configMapRef" if kind == "configmap" else "secretRef"
            if (src.get(key) or {}).get("name") == name:
                return True
        for var in c.get("env") or []:
            key = "configMapKeyRef" if kind == "configmap" else "secretKeyRef"
            if ((var.get("valueFrom") or {}).get(key) or {}).get("name") == name:
                return True
    return False
