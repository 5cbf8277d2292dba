"""The demo: one edge node running one pod, everything on this machine.

``python -m keadm.devstack`` (``nox -s demo``). Steps, one output line each:

1. check (and on Debian as root, install) what the private containerd needs;
2. the stack (:class:`~keadm.devstack.stack.DevStack`): the API server (devkube,
   or the cluster of ``$KUBECONFIG``), containerd with local images, cloudcore,
   edgecore until its Node is Ready;
3. a ConfigMap and a busybox pod that prints it; wait until the pod is Running
   and Ready, read its line from the container's CRI log file;
4. delete the pod; wait until it is gone from the API server and its containers
   and sandbox are gone from containerd;
5. stop everything the demo started.

Exit codes: 0 done; 1 a step failed (the message names the step and the log to
read); 2 the machine lacks what containerd needs; 130 interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.markup import escape

import kubeclient
from keadm.devstack import requirements, workload
from keadm.devstack.crilog import container_log_path, read_container_log
from keadm.devstack.stack import DevStack, StackError, StackSettings, kubeconfig_from_env
from keadm.devstack.waiting import WaitTimeout, wait_for

__all__ = ["DemoOptions", "run_demo"]

log = logging.getLogger(__name__)

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REQUIREMENTS = 2
EXIT_INTERRUPTED = 130


@dataclass
class DemoOptions:
    work_dir: Path | None = None
    keep: bool = False
    timeout: float = 120.0
    kubeconfig: Path | None = None  # default: $KUBECONFIG, else devkube
    quic: bool = False  # the edge joins over QUIC instead of WebSocket


@dataclass
class _Demo:
    opts: DemoOptions
    console: Console
    work_dir: Path
    stack: DevStack | None = None
    namespace: str = ""
    started: float = field(default_factory=time.monotonic)
    _last_seconds: float = 0.0

    def ok(self, step: str, detail: str, seconds: float | None = None) -> None:
        took = f" [dim]({seconds:.1f}s)[/dim]" if seconds is not None else ""
        self.console.print(f"[green]✓[/green] {step:<16} {escape(detail)}{took}")

    async def step(self, title: str, action: Callable[[], Awaitable[T]]) -> T:
        """Run one step under a spinner (in a terminal) and time it."""
        t0 = time.monotonic()
        with self.console.status(f"{title} ..."):
            result = await action()
        self._last_seconds = time.monotonic() - t0
        return result


async def _create(kube: kubeclient.KubeClient, ref: Any, body: dict[str, Any], ns: str) -> Any:
    # A fresh namespace on a real cluster has no default ServiceAccount for a
    # moment, and the admission plugin refuses pods until it has.
    async def attempt() -> Any:
        try:
            return await kube.create(ref, body, namespace=ns)
        except kubeclient.Forbidden as exc:
            if "serviceaccount" in str(exc).lower():
                return None
            raise

    return await wait_for(attempt, what=f"creating {body['kind']}", timeout=30.0, interval=0.5)


async def _workload(demo: _Demo, stack: DevStack) -> None:
    kube = stack.client()
    timeout = demo.opts.timeout
    ns = f"kubeedge-demo-{secrets.token_hex(3)}"

    async def make_ns() -> None:
        await kube.create(
            kubeclient.NAMESPACES,
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        )
        demo.namespace = ns
        await _create(kube, kubeclient.CONFIGMAPS, workload.demo_configmap(ns), ns)

    await demo.step("configmap", make_ns)
    demo.ok("configmap", f"{ns}/demo-config (mounted at /etc/demo)", demo._last_seconds)

    pod_body = workload.demo_pod(ns, stack.node_name)
    name = pod_body["metadata"]["name"]

    async def run_pod() -> dict[str, Any]:
        await _create(kube, kubeclient.PODS, pod_body, ns)
        return await stack.wait_pod(
            ns, name, workload.is_running_and_ready, what="to be Running and Ready",
            timeout=timeout,
        )

    pod = await demo.step("pod", run_pod)
    node = await stack.node()
    ready = stack.ready_condition(node or {}) or {}
    demo.ok("node", f"{stack.node_name} Ready={ready.get('status')}")
    demo.ok(
        "pod",
        f"{ns}/{name} Running on {pod['spec'].get('nodeName')}, "
        f"IP {pod['status'].get('podIP', '?')}",
        demo._last_seconds,
    )

    cid = workload.container_id(pod, "hello")
    if cid is None:
        raise StackError("pod log", "the pod status names no container id", stack.edge_paths.log)
    from edgecore.edged.cri import CRIClient

    async with CRIClient(stack.runtime_endpoint) as cri:

        async def log_line() -> str | None:
            for line in await read_container_log(cri, cid):
                if line.startswith(workload.LOG_PREFIX):
                    return line
            return None

        try:
            line = await demo.step(
                "pod log",
                lambda: wait_for(log_line, what="the container's log line", timeout=30.0),
            )
        except WaitTimeout as exc:
            raise StackError("pod log", str(exc), stack.edge_paths.log) from exc
        path = await container_log_path(cri, cid)
        demo.ok("pod log", line)
        demo.console.print(f"  [dim](from {escape(str(path))})[/dim]")

        if demo.opts.keep:
            await _keep_running(demo, stack)

        uid = pod["metadata"]["uid"]

        async def delete_pod() -> None:
            await kube.delete(kubeclient.PODS, name, namespace=ns)
            await stack.wait_pod_gone(ns, name, timeout=timeout)
            try:
                await workload.wait_runtime_objects_gone(cri, uid, timeout=timeout)
            except WaitTimeout as exc:
                raise StackError("pod deletion", str(exc), stack.edge_paths.log) from exc

        await demo.step("pod deletion", delete_pod)
        demo.ok(
            "pod deleted", "gone from the API server; containers and sandbox removed",
            demo._last_seconds,
        )


async def _keep_running(demo: _Demo, stack: DevStack) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    demo.console.print(
        f"\nThe stack keeps running. Try:\n"
        f"  KUBECONFIG={escape(str(stack.kubeconfig))} kubectl get nodes,pods -A\n"
        f"Logs are in {escape(str(demo.work_dir))}. Press Ctrl-C to delete the pod and stop.\n"
    )
    try:
        await stop.wait()
    finally:
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)  # back to: Ctrl-C interrupts


async def _cleanup_namespace(demo: _Demo) -> None:
    stack = demo.stack
    if not demo.namespace or stack is None or stack.kube is None:
        return
    with contextlib.suppress(kubeclient.KubeClientError, OSError):
        await stack.kube.delete(kubeclient.NAMESPACES, demo.namespace)


@contextlib.asynccontextmanager
async def _interruptible() -> AsyncIterator[None]:
    """Ctrl-C / SIGTERM cancel the demo so that it still stops what it started."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    assert task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        yield
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _check_requirements(console: Console, work_dir: Path) -> int | None:
    missing = requirements.missing_requirements()
    if missing:
        console.print(f"[yellow]![/yellow] containerd needs: {', '.join(missing)}")
        done, why = requirements.install_with_setup(work_dir / "setup.log")
        if not done:
            console.print(
                f"[red]✗[/red] cannot install them here ({escape(why)}): "
                f"{escape(requirements.INSTALL_HINT)}"
            )
            return EXIT_REQUIREMENTS
        still = requirements.missing_requirements()
        if still:
            console.print(f"[red]✗[/red] still missing after scripts/setup: {', '.join(still)}")
            return EXIT_REQUIREMENTS
        console.print("[green]✓[/green] requirements   installed by scripts/setup")
    if os.geteuid() != 0:
        console.print(
            "[red]✗[/red] the private containerd needs root (it creates namespaces, "
            "mounts and cgroups): run the demo as root"
        )
        return EXIT_REQUIREMENTS
    return None


async def _run(opts: DemoOptions, console: Console, work_dir: Path) -> int:
    kubeconfig = opts.kubeconfig or kubeconfig_from_env()
    demo = _Demo(opts, console, work_dir)
    stack = DevStack(StackSettings(
        work_dir=work_dir, kubeconfig=kubeconfig,
        transport="quic" if opts.quic else "websocket",
    ))
    demo.stack = stack
    failure: StackError | None = None
    interrupted = False
    try:
        async with _interruptible():
            try:
                from keadm.devstack.stack import STEPS

                for method, title in STEPS:
                    await demo.step(title, getattr(stack, method))
                    demo.ok(title, stack.facts.get(title, ""), demo._last_seconds)
                await _workload(demo, stack)
            except StackError as exc:
                failure = exc
            except (kubeclient.KubeClientError, OSError, WaitTimeout) as exc:
                failure = StackError(stack._current_step or "demo", str(exc))
            except asyncio.CancelledError:
                interrupted = True
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()  # handled: the stop below must not be cut short
            finally:
                with console.status("stopping ..."):
                    await asyncio.shield(_stop(demo, stack))
    except asyncio.CancelledError:
        interrupted = True
    if interrupted:
        console.print("[yellow]![/yellow] interrupted; stopped everything the demo started")
        return EXIT_INTERRUPTED
    if failure is not None:
        console.print(f"[red]✗[/red] step [bold]{escape(failure.step)}[/bold] failed: "
                      f"{escape(failure.reason)}")
        log_file = failure.log_file or stack.logs.get(failure.step)
        if log_file is not None:
            console.print(f"  read the log: {escape(str(log_file))}")
        console.print(f"  all logs are in {escape(str(work_dir))}")
        return EXIT_FAILED
    demo.ok("stopped", "everything the demo started",)
    console.print(
        f"[bold green]demo passed[/bold green] in {time.monotonic() - demo.started:.1f}s; "
        f"logs in {escape(str(work_dir))}"
    )
    return EXIT_OK


async def _stop(demo: _Demo, stack: DevStack) -> None:
    await _cleanup_namespace(demo)
    await stack.stop()


def run_demo(opts: DemoOptions, console: Console | None = None) -> int:
    """Run the demo; returns the process exit code."""
    console = console or Console(highlight=False, soft_wrap=True)
    if opts.work_dir is not None:
        work_dir = opts.work_dir.resolve()
        if work_dir.exists() and any(work_dir.iterdir()):
            console.print(f"[red]✗[/red] work dir {escape(str(work_dir))} is not empty")
            return EXIT_FAILED
        work_dir.mkdir(parents=True, exist_ok=True)
    else:
        work_dir = Path(tempfile.mkdtemp(prefix="kubeedge-py-demo-"))
    logging.basicConfig(
        filename=str(work_dir / "demo.log"), level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    console.print(f"kubeedge-py demo: work dir {escape(str(work_dir))}")
    code = _check_requirements(console, work_dir)
    if code is not None:
        return code
    return asyncio.run(_run(opts, console, work_dir))
