"""The all-in-one development stack (devkube or your cluster, containerd,
cloudcore, edgecore) and the demo that runs a pod on it.

``python -m keadm.devstack`` runs the demo (see docs/demo.md); tests use
:class:`DevStack` directly. keadm will later automate real installs; this is
the one-machine development wiring.
"""

from __future__ import annotations

from keadm.devstack.procs import ManagedProcess, python_env
from keadm.devstack.stack import (
    STEPS,
    DevStack,
    StackError,
    StackSettings,
    free_tcp_port,
    free_udp_port,
    kubeconfig_from_env,
)
from keadm.devstack.waiting import WaitTimeout, wait_for

__all__ = [
    "STEPS",
    "DevStack",
    "ManagedProcess",
    "StackError",
    "StackSettings",
    "WaitTimeout",
    "free_tcp_port",
    "free_udp_port",
    "kubeconfig_from_env",
    "python_env",
    "wait_for",
]
