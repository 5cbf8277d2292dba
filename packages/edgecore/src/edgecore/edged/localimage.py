"""Build a tiny OCI image from the host's static busybox, with no registry.

No registry is reachable on the machines that run the tests and the demo, so
edged's images are made locally: one uncompressed layer holding
``/bin/busybox`` (Debian ``busybox-static``) and a symlink per applet, plus
the small directory skeleton a container runtime expects. Two image configs
share that layer:

- the *busybox* image (``Cmd ["sh"]``), tagged ``docker.io/library/busybox:latest``
  and ``kubeedge-py.local/busybox:latest``;
- the *pause* image (``Entrypoint ["/bin/sleep", "inf"]``), tagged as the
  sandbox images ``registry.k8s.io/pause:3.6`` (containerd 1.6's default) and
  ``kubeedge/pause:3.6`` (edgecore's default ``podSandboxImage``).

The result is an OCI image-layout tar (``oci-layout``, ``index.json``,
``blobs/sha256/...``) in which every index entry carries the annotation
``io.containerd.image.name``, which ``ctr images import`` uses as the image
name. The tar is deterministic (fixed mtimes, sorted entries): the same
busybox binary always gives the same digests, so re-importing is a no-op.

:func:`import_images` runs ``ctr -n k8s.io images import`` (argument list, no
shell) so the CRI plugin sees the images.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import platform
import subprocess
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "BUSYBOX_IMAGES",
    "PAUSE_IMAGES",
    "ImageImportError",
    "build_oci_archive",
    "busybox_applets",
    "import_images",
    "normalize_name",
]

log = logging.getLogger(__name__)

BUSYBOX_IMAGES = ("docker.io/library/busybox:latest", "kubeedge-py.local/busybox:latest")
PAUSE_IMAGES = ("registry.k8s.io/pause:3.6", "kubeedge/pause:3.6")
DEFAULT_BUSYBOX = Path("/bin/busybox")
CRI_NAMESPACE = "k8s.io"
IMPORT_TIMEOUT = 120.0

_MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_MT_CONFIG = "application/vnd.oci.image.config.v1+json"
_MT_LAYER = "application/vnd.oci.image.layer.v1.tar"
_MT_INDEX = "application/vnd.oci.image.index.v1+json"
# A fixed timestamp keeps the layer bytes, and so every digest, reproducible.
_EPOCH = 1_700_000_000
_CREATED = "2023-11-14T22:13:20Z"
_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Applets wanted even when `busybox --list` cannot be run (it always can on
# Debian's busybox-static; this is the floor the tests rely on).
_MIN_APPLETS = ("sh", "echo", "sleep", "cat", "wget", "nc", "httpd", "ls", "env", "true", "false")


class ImageImportError(RuntimeError):
    """The image archive could not be built or ``ctr images import`` failed."""


@dataclass(frozen=True, slots=True)
class _Blob:
    media_type: str
    data: bytes
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "digest", "sha256:" + hashlib.sha256(self.data).hexdigest())

    def descriptor(self, annotations: dict[str, str] | None = None) -> dict[str, object]:
        d: dict[str, object] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": len(self.data),
        }
        if annotations:
            d["annotations"] = annotations
        return d


def _go_arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(
        machine, machine
    )


def busybox_applets(busybox: Path = DEFAULT_BUSYBOX) -> list[str]:
    """The applet names the given busybox binary provides."""
    try:
        out = subprocess.run(
            [str(busybox), "--list"], capture_output=True, check=True, timeout=10, text=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ImageImportError(f"cannot list the applets of {busybox}: {exc}") from exc
    names = {line.strip() for line in out.splitlines() if line.strip()}
    names.update(_MIN_APPLETS)
    names.discard("busybox")
    return sorted(n for n in names if "/" not in n)


def _tar_add(
    tar: tarfile.TarFile,
    name: str,
    *,
    kind: bytes,
    data: bytes = b"",
    mode: int = 0o755,
    link: str = "",
) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = _EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def _layer(busybox_bytes: bytes, applets: Iterable[str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d, mode in (
            ("bin", 0o755),
            ("dev", 0o755),
            ("etc", 0o755),
            ("proc", 0o555),
            ("root", 0o700),
            ("sys", 0o555),
            ("tmp", 0o1777),
            ("usr", 0o755),
            ("usr/bin", 0o755),
            ("var", 0o755),
            ("var/www", 0o755),
        ):
            _tar_add(tar, d + "/", kind=tarfile.DIRTYPE, mode=mode)
        _tar_add(tar, "bin/busybox", kind=tarfile.REGTYPE, data=busybox_bytes, mode=0o755)
        for name in sorted(set(applets)):
            _tar_add(tar, f"bin/{name}", kind=tarfile.SYMTYPE, link="busybox", mode=0o777)
        files = {
            "etc/passwd": (
                b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
            ),
            "etc/group": b"root:x:0:\nnobody:x:65534:\n",
            "etc/hosts": b"127.0.0.1 localhost\n",
        }
        for path, data in files.items():
            _tar_add(tar, path, kind=tarfile.REGTYPE, data=data, mode=0o644)
    return buf.getvalue()


def _config(layer: _Blob, *, cmd: list[str] | None, entrypoint: list[str] | None) -> _Blob:
    cfg: dict[str, object] = {"Env": [_PATH_ENV], "WorkingDir": "/"}
    if cmd is not None:
        cfg["Cmd"] = cmd
    if entrypoint is not None:
        cfg["Entrypoint"] = entrypoint
    body = {
        "created": _CREATED,
        "architecture": _go_arch(),
        "os": "linux",
        "config": cfg,
        # The layer is stored uncompressed, so its diff id is its digest.
        "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
        "history": [{"created": _CREATED, "created_by": "kubeedge-py localimage"}],
    }
    return _Blob(_MT_CONFIG, json.dumps(body, sort_keys=True).encode())


def _manifest(config: _Blob, layer: _Blob) -> _Blob:
    body = {
        "schemaVersion": 2,
        "mediaType": _MT_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.descriptor()],
    }
    return _Blob(_MT_MANIFEST, json.dumps(body, sort_keys=True).encode())


def normalize_name(name: str) -> str:
    """Docker-style reference normalisation, as the CRI plugin applies it.

    ``kubeedge/pause:3.6`` -> ``docker.io/kubeedge/pause:3.6``, ``busybox`` ->
    ``docker.io/library/busybox:latest``. containerd stores an imported image
    under the literal name, but the CRI looks images up by the normalised one.
    """
    first, _, rest = name.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        name = f"docker.io/{name}" if rest else f"docker.io/library/{name}"
    last = name.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        name += ":latest"
    return name


def build_oci_archive(
    dest: Path,
    *,
    busybox: Path = DEFAULT_BUSYBOX,
    busybox_names: Iterable[str] = BUSYBOX_IMAGES,
    pause_names: Iterable[str] = PAUSE_IMAGES,
) -> dict[str, str]:
    """Write the OCI image-layout tar to ``dest``.

    Returns:
        image name -> manifest digest, for every name written.

    Raises:
        ImageImportError: ``busybox`` is missing or unusable.
    """
    try:
        busybox_bytes = busybox.read_bytes()
    except OSError as exc:
        raise ImageImportError(
            f"{busybox} is needed to build the local images (Debian: apt-get install "
            f"busybox-static): {exc}"
        ) from exc
    layer = _Blob(_MT_LAYER, _layer(busybox_bytes, busybox_applets(busybox)))
    images = {
        "busybox": _config(layer, cmd=["sh"], entrypoint=None),
        "pause": _config(layer, cmd=None, entrypoint=["/bin/sleep", "inf"]),
    }
    manifests = {kind: _manifest(cfg, layer) for kind, cfg in images.items()}
    names = {
        "busybox": sorted({normalize_name(n) for n in busybox_names}),
        "pause": sorted({normalize_name(n) for n in pause_names}),
    }
    entries: list[dict[str, object]] = []
    result: dict[str, str] = {}
    for kind, manifest in manifests.items():
        for name in names[kind]:
            entries.append(
                manifest.descriptor(
                    {
                        "io.containerd.image.name": name,
                        "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1],
                    }
                )
            )
            result[name] = manifest.digest
    index = {"schemaVersion": 2, "mediaType": _MT_INDEX, "manifests": entries}
    blobs = [layer, *images.values(), *manifests.values()]
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _tar_add(tar, "blobs/", kind=tarfile.DIRTYPE)
        _tar_add(tar, "blobs/sha256/", kind=tarfile.DIRTYPE)
        seen: set[str] = set()
        for blob in blobs:
            if blob.digest in seen:
                continue
            seen.add(blob.digest)
            _tar_add(
                tar,
                "blobs/sha256/" + blob.digest.split(":", 1)[1],
                kind=tarfile.REGTYPE,
                data=blob.data,
                mode=0o644,
            )
        _tar_add(
            tar,
            "oci-layout",
            kind=tarfile.REGTYPE,
            data=json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
            mode=0o644,
        )
        _tar_add(
            tar,
            "index.json",
            kind=tarfile.REGTYPE,
            data=json.dumps(index, sort_keys=True).encode(),
            mode=0o644,
        )
    return result


async def import_images(
    address: str | Path,
    archive: Path,
    *,
    ctr: str = "ctr",
    namespace: str = CRI_NAMESPACE,
    timeout: float = IMPORT_TIMEOUT,
) -> None:
    """Import ``archive`` into the containerd at ``address`` (a socket path).

    Raises:
        ImageImportError: ``ctr`` failed or timed out; the message holds its stderr.
    """
    argv = [ctr, "--address", str(address), "-n", namespace, "images", "import", str(archive)]
    log.info("importing local images from %s into %s", archive, address)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    except OSError as exc:
        raise ImageImportError(f"cannot run {ctr}: {exc}") from exc
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    except TimeoutError as exc:
        proc.kill()
        await proc.wait()
        raise ImageImportError(f"ctr images import timed out after {timeout}s") from exc
    if proc.returncode != 0:
        raise ImageImportError(
            f"ctr images import failed ({proc.returncode}): {err.decode(errors='replace').strip()}"
        )
    for line in out.decode(errors="replace").splitlines():
        log.debug("ctr: %s", line)
