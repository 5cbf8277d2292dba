"""Where keadm puts things: KubeEdge's directories, optionally under a root.

KubeEdge installs into ``/etc/kubeedge`` (configs, CA, certificates),
``/var/lib/kubeedge`` (state) and ``/var/log/kubeedge`` (logs)
(protocol.md section 8.2, step 3). ``--root DIR`` moves all three under DIR, so
tests and several installs on one machine never share a file. Pure: only
paths, no file is touched here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Layout"]


@dataclass(frozen=True, slots=True)
class Layout:
    """The paths of one install.

    Attributes:
        root: ``/`` for a real install, or the ``--root`` directory.
    """

    root: Path = Path("/")

    @property
    def is_system(self) -> bool:
        """True for the machine's own directories (``--root`` not given)."""
        return self.root == Path("/")

    @property
    def etc(self) -> Path:
        return self.root / "etc" / "kubeedge"

    @property
    def config_dir(self) -> Path:
        return self.etc / "config"

    @property
    def ca_dir(self) -> Path:
        return self.etc / "ca"

    @property
    def certs_dir(self) -> Path:
        return self.etc / "certs"

    @property
    def var_lib(self) -> Path:
        return self.root / "var" / "lib" / "kubeedge"

    @property
    def var_log(self) -> Path:
        return self.root / "var" / "log" / "kubeedge"

    # --- cloud ----------------------------------------------------------------------

    @property
    def cloudcore_config(self) -> Path:
        return self.config_dir / "cloudcore.yaml"

    @property
    def cloudcore_log(self) -> Path:
        return self.var_log / "cloudcore.log"

    @property
    def cloudcore_pid(self) -> Path:
        return self.var_lib / "cloudcore.pid"

    # --- edge -----------------------------------------------------------------------

    @property
    def edgecore_config(self) -> Path:
        return self.config_dir / "edgecore.yaml"

    @property
    def edgecore_log(self) -> Path:
        return self.var_log / "edgecore.log"

    @property
    def edgecore_pid(self) -> Path:
        return self.var_lib / "edgecore.pid"

    @property
    def bootstrap_token(self) -> Path:
        """Where KubeEdge's keadm leaves the token for edgecore during a join."""
        return self.etc / "bootstrap-edgecore.conf"

    @property
    def edgecore_database(self) -> Path:
        return self.var_lib / "edgecore.db"

    @property
    def kubelet_root(self) -> Path:
        """edged's ``rootDirectory`` (KubeEdge: ``/var/lib/kubelet``)."""
        return self.root / "var" / "lib" / "kubelet"

    @property
    def static_pods(self) -> Path:
        return self.etc / "manifests"

    # --- both -----------------------------------------------------------------------

    def unit_name(self, component: str) -> str:
        """The systemd unit of ``component``; a ``--root`` install gets its own."""
        if self.is_system:
            return f"{component}.service"
        tag = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:8]
        return f"{component}-{tag}.service"

    def owned_dirs(self) -> tuple[Path, ...]:
        """What ``keadm reset`` removes (KubeEdge's util/reset.go list)."""
        return (self.etc, self.var_lib, self.var_log, self.kubelet_root)
