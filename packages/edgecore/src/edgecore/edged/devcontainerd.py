"""Start a private containerd for tests and the demo.

A :class:`DevContainerd` owns one containerd process with its own root, state
directory, socket and ``config.toml``, next to (never instead of) a system
containerd. The config:

- ``restrict_oom_score_adj = true``: these machines lack CAP_SYS_RESOURCE, and
  without it runc fails to lower a container's oom_score_adj;
- the CRI plugin with the sandbox image (default ``kubeedge/pause:3.6``, made
  by :mod:`edgecore.edged.localimage`), the ``overlayfs`` snapshotter and runc v2;
- CNI: plugins from ``/usr/lib/cni`` (Debian ``containernetworking-plugins``),
  and a conf dir of our own with one bridge + host-local conflist whose bridge
  name, subnet and IPAM data dir are private to this instance;
- the streaming server on 127.0.0.1 with a kernel-chosen port.

``start`` waits for readiness with a CRI ``Version`` call (no fixed sleeps);
``stop`` removes the pod sandboxes this instance still runs (so their shims
exit), terminates containerd and unmounts anything left under its directories.
It only ever signals the process it started.

Typical use (the demo and ``tests/fixtures/containerd.py``)::

    async with DevContainerd(Path("/tmp/ke-ctrd")) as ctrd:
        await ctrd.import_local_images()
        ...  # edged with container_runtime_endpoint = ctrd.endpoint
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import logging
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from edgecore.edged import localimage
from edgecore.edged.cri import CRIClient, CRITimeouts
from edgecore.edged.errors import CRIError

__all__ = ["ContainerdStartError", "DevContainerd", "DevContainerdSettings"]

log = logging.getLogger(__name__)


class ContainerdStartError(RuntimeError):
    """containerd is missing, exited, or did not become ready in time."""



#: Where derived pod subnets come from: containerd's own default range, which
#: stays clear of Kubernetes' default Service range 10.96.0.0/12 (a pod there
#: would shadow cluster Service IPs when the node joins a real cluster).
POD_SUBNET_POOL = ipaddress.ip_network("10.88.0.0/13")


def derived_subnet(tag: str) -> str:
    """A /24 of :data:`POD_SUBNET_POOL` chosen by the hex ``tag``."""
    count = 2 ** (24 - POD_SUBNET_POOL.prefixlen)
    index = int(tag, 16) % count
    base = int(POD_SUBNET_POOL.network_address) + (index << 8)
    return f"{ipaddress.ip_address(base)}/24"

@dataclass(frozen=True, slots=True)
class DevContainerdSettings:
    """What a private containerd looks like.

    Attributes:
        containerd: the binary (Debian package ``containerd``).
        ctr: the ``ctr`` binary used to import images.
        cni_bin_dir: CNI plugins (Debian ``containernetworking-plugins``).
        sandbox_image: the CRI ``sandbox_image``.
        subnet: the pod subnet of the bridge network; ``None`` derives a /24 in
            10.88.0.0/13 (10.88-10.95) from the base directory so parallel
            instances differ (:func:`derived_subnet`).
        ready_timeout: how long ``start`` waits for the CRI to answer.
        stop_timeout: how long ``stop`` waits after SIGTERM before SIGKILL.
        snapshotter: containerd snapshotter.
        host_ports: add the CNI ``portmap`` plugin so ``hostPort`` works (needs iptables).
            portmap creates shared ``CNI-HOSTPORT-*`` chains in the nat table; ``stop``
            removes them again if this instance created them and they are empty.
    """

    containerd: str = "/usr/bin/containerd"
    ctr: str = "/usr/bin/ctr"
    cni_bin_dir: Path = Path("/usr/lib/cni")
    sandbox_image: str = "kubeedge/pause:3.6"
    subnet: str | None = None
    ready_timeout: float = 30.0
    stop_timeout: float = 10.0
    snapshotter: str = "overlayfs"
    host_ports: bool = False


def _toml_str(value: str | Path) -> str:
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


@dataclass
class DevContainerd:
    """One private containerd rooted at ``base``.

    Attributes set after :meth:`start`: ``pid``.
    """

    base: Path
    settings: DevContainerdSettings = field(default_factory=DevContainerdSettings)
    _proc: asyncio.subprocess.Process | None = field(default=None, init=False, repr=False)
    _log_file: object | None = field(default=None, init=False, repr=False)
    _created_portmap_chains: bool = field(default=False, init=False, repr=False)

    # --- layout ------------------------------------------------------------------

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def state(self) -> Path:
        return self.base / "state"

    @property
    def socket(self) -> Path:
        return self.base / "containerd.sock"

    @property
    def endpoint(self) -> str:
        """The CRI endpoint, as KubeEdge's ``containerRuntimeEndpoint`` spells it."""
        return f"unix://{self.socket}"

    @property
    def config_path(self) -> Path:
        return self.base / "config.toml"

    @property
    def cni_conf_dir(self) -> Path:
        return self.base / "cni" / "net.d"

    @property
    def log_path(self) -> Path:
        return self.base / "containerd.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def _tag(self) -> str:
        return hashlib.sha256(str(self.base.resolve()).encode()).hexdigest()[:8]

    @property
    def bridge_name(self) -> str:
        return f"kep{self._tag}"  # <= 15 chars, the kernel's IFNAMSIZ limit

    @property
    def network_name(self) -> str:
        return f"kubeedge-py-{self._tag}"

    @property
    def subnet(self) -> str:
        if self.settings.subnet:
            return self.settings.subnet
        return derived_subnet(self._tag)

    # --- config ------------------------------------------------------------------

    def write_config(self) -> None:
        """Write ``config.toml`` and the CNI conflist."""
        s = self.settings
        for d in (self.root, self.state, self.cni_conf_dir, self.base / "cni" / "ipam"):
            d.mkdir(parents=True, exist_ok=True)
        # Plugins that cannot work here (or are not wanted) are disabled so the log
        # is not full of their start-up failures.
        disabled = [
            "io.containerd.snapshotter.v1.aufs",
            "io.containerd.snapshotter.v1.btrfs",
            "io.containerd.snapshotter.v1.devmapper",
            "io.containerd.snapshotter.v1.zfs",
            "io.containerd.tracing.processor.v1.otlp",
            "io.containerd.internal.v1.tracing",
        ]
        config = f"""\
# Written by kubeedge-py edgecore.edged.devcontainerd: a private containerd.
version = 2
root = {_toml_str(self.root)}
state = {_toml_str(self.state)}
disabled_plugins = {json.dumps(disabled)}

[grpc]
  address = {_toml_str(self.socket)}

[ttrpc]
  address = {_toml_str(str(self.socket) + ".ttrpc")}

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = {_toml_str(self.root / "opt")}
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = {_toml_str(s.sandbox_image)}
    # No CAP_SYS_RESOURCE here: never try to lower a container's oom_score_adj.
    restrict_oom_score_adj = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    enable_selinux = false
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = {_toml_str(s.snapshotter)}
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = {_toml_str(s.cni_bin_dir)}
      conf_dir = {_toml_str(self.cni_conf_dir)}
      max_conf_num = 1
"""
        self.config_path.write_text(config)
        conflist = {
            "cniVersion": "1.0.0",
            "name": self.network_name,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.bridge_name,
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": self.subnet}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(self.base / "cni" / "ipam"),
                    },
                },
            ],
        }
        if s.host_ports:
            plugins = conflist["plugins"]
            assert isinstance(plugins, list)
            plugins.append({"type": "portmap", "capabilities": {"portMappings": True}})
        (self.cni_conf_dir / "10-kubeedge-py.conflist").write_text(json.dumps(conflist, indent=2))

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Write the config, start containerd and wait until its CRI answers.

        Raises:
            ContainerdStartError: binary missing, process exited, or not ready in time
                (the message ends with the tail of containerd's log).
        """
        if self._proc is not None:
            return
        self._check_binaries()
        self.write_config()
        if self.settings.host_ports:
            self._created_portmap_chains = not _portmap_chains_exist()
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            self._proc = await asyncio.create_subprocess_exec(
                self.settings.containerd,
                "--config",
                str(self.config_path),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_fd,
                stderr=log_fd,
                start_new_session=True,  # our signals reach containerd, not its shims' group
            )
        finally:
            os.close(log_fd)
        log.info("started containerd pid %s at %s", self._proc.pid, self.socket)
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise

    def _check_binaries(self) -> None:
        for binary in (self.settings.containerd, self.settings.ctr):
            if not Path(binary).exists():
                raise ContainerdStartError(
                    f"{binary} not found: install containerd "
                    "(Debian: apt-get install containerd runc containernetworking-plugins)"
                )

    async def _wait_ready(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.ready_timeout
        client = CRIClient(self.endpoint, timeouts=CRITimeouts(connect=1.0))
        try:
            while True:
                assert self._proc is not None
                if self._proc.returncode is not None:
                    raise ContainerdStartError(
                        f"containerd exited with {self._proc.returncode}: {self._log_tail()}"
                    )
                if self.socket.exists():
                    try:
                        v = await client.version()
                    except CRIError:
                        pass
                    else:
                        log.info("containerd ready: %s %s", v.runtime_name, v.runtime_version)
                        return
                if loop.time() > deadline:
                    raise ContainerdStartError(
                        f"containerd not ready after {self.settings.ready_timeout}s: "
                        f"{self._log_tail()}"
                    )
                # Poll the exit status and the socket; the CRI call itself blocks up to 1 s.
                await asyncio.sleep(0.05)
        finally:
            await client.close()

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:])

    async def remove_all_pods(self) -> None:
        """Stop and remove every sandbox (and so every container) of this instance."""
        client = CRIClient(self.endpoint, timeouts=CRITimeouts(request=30.0, connect=2.0))
        try:
            for sb in await client.list_pod_sandbox():
                for c in await client.list_containers(sandbox_id=sb.id):
                    with contextlib.suppress(CRIError):
                        await client.stop_container(c.id, 0)
                    with contextlib.suppress(CRIError):
                        await client.remove_container(c.id)
                with contextlib.suppress(CRIError):
                    await client.stop_pod_sandbox(sb.id)
                with contextlib.suppress(CRIError):
                    await client.remove_pod_sandbox(sb.id)
        except CRIError as exc:
            log.warning("cannot clean pods of %s: %s", self.socket, exc)
        finally:
            await client.close()

    async def stop(self, *, remove_pods: bool = True) -> None:
        """Remove this instance's pods, stop containerd and unmount leftovers.

        ``remove_pods=False`` stops only the daemon, as a containerd upgrade or crash
        would: the containers keep running under their shims, their mounts and the
        bridge stay, and a later :meth:`start` on the same ``base`` picks them up again.
        """
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if remove_pods and proc.returncode is None:
            await self.remove_all_pods()
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(self.settings.stop_timeout):
                    await proc.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        log.info("containerd pid %s stopped (%s)", proc.pid, proc.returncode)
        if not remove_pods:
            return
        self._unmount_leftovers()
        self._remove_bridge()
        if self._created_portmap_chains:
            _remove_portmap_chains()
            self._created_portmap_chains = False

    def _unmount_leftovers(self) -> None:
        """Unmount what containerd left mounted under our dirs (deepest first)."""
        base = str(self.base.resolve())
        try:
            with open("/proc/self/mountinfo") as f:
                points = [line.split()[4] for line in f]
        except OSError:
            return
        for mp in sorted((p for p in points if p.startswith(base + "/")), reverse=True):
            with contextlib.suppress(OSError):
                _umount(mp)

    def _remove_bridge(self) -> None:
        ip = shutil.which("ip")
        if ip is None or not Path(f"/sys/class/net/{self.bridge_name}").exists():
            return
        subprocess.run(
            [ip, "link", "delete", self.bridge_name], check=False, capture_output=True, timeout=10
        )

    async def import_local_images(self, archive: Path | None = None) -> dict[str, str]:
        """Build the busybox/pause OCI archive (see :mod:`localimage`) and import it.

        Returns:
            image name -> manifest digest.
        """
        archive = archive or self.base / "images" / "kubeedge-py-local.oci.tar"
        names = localimage.build_oci_archive(
            archive, pause_names=sorted({*localimage.PAUSE_IMAGES, self.settings.sandbox_image})
        )
        await localimage.import_images(self.socket, archive, ctr=self.settings.ctr)
        return names

    async def __aenter__(self) -> DevContainerd:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


_PORTMAP_CHAINS = ("CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK")
_PORTMAP_JUMPS = (
    ("PREROUTING", ["-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"]),
    ("OUTPUT", ["-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"]),
    (
        "POSTROUTING",
        [
            "-m",
            "comment",
            "--comment",
            "CNI portfwd requiring masquerade",
            "-j",
            "CNI-HOSTPORT-MASQ",
        ],
    ),
)


def _iptables(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["iptables", "-w", "5", "-t", "nat", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=15,
    )


def _portmap_chains_exist() -> bool:
    try:
        return _iptables("-S", _PORTMAP_CHAINS[0]).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _remove_portmap_chains() -> None:
    """Undo portmap's shared chains, unless some other pod still forwards a port."""
    try:
        dnat = _iptables("-S", "CNI-HOSTPORT-DNAT").stdout.splitlines()
        if any(line.startswith("-A") for line in dnat):
            return
        for chain, rule in _PORTMAP_JUMPS:
            _iptables("-D", chain, *rule)
        for chain in _PORTMAP_CHAINS:
            _iptables("-F", chain)
            _iptables("-X", chain)
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("cannot remove the CNI portmap chains: %s", exc)


def _umount(path: str) -> None:
    import ctypes
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    MNT_DETACH = 2  # lazy: a busy mount still goes away from the tree
    if libc.umount2(path.encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)


async def serve(base: Path, settings: DevContainerdSettings, *, images: bool = True) -> int:
    """Start a private containerd, import the local images, run until SIGTERM/SIGINT."""
    import signal as _signal

    ctrd = DevContainerd(base, settings=settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (_signal.SIGTERM, _signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await ctrd.start()
    except ContainerdStartError as exc:
        print(f"error: {exc}", flush=True)
        return 1
    try:
        if images:
            names = await ctrd.import_local_images()
            print("images: " + " ".join(sorted(names)), flush=True)
        # One line the caller can wait for; the endpoint is containerRuntimeEndpoint.
        print(f"READY {ctrd.endpoint}", flush=True)
        await stop.wait()
    finally:
        await ctrd.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m edgecore.edged.devcontainerd --base DIR [--sandbox-image IMG] [--no-images]``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m edgecore.edged.devcontainerd",
        description="Run a private containerd (own root/state/socket/CNI) until SIGTERM.",
    )
    parser.add_argument("--base", type=Path, required=True, help="directory for everything")
    parser.add_argument("--sandbox-image", default=DevContainerdSettings().sandbox_image)
    parser.add_argument("--subnet", default=None, help="pod subnet of the CNI bridge")
    parser.add_argument("--no-images", action="store_true", help="do not import busybox/pause")
    parser.add_argument(
        "--host-ports", action="store_true", help="CNI portmap plugin: hostPort works (iptables)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = DevContainerdSettings(
        sandbox_image=args.sandbox_image, subnet=args.subnet, host_ports=args.host_ports
    )
    return asyncio.run(serve(args.base.resolve(), settings, images=not args.no_images))


if __name__ == "__main__":
    raise SystemExit(main())
