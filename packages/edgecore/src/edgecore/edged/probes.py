"""Liveness, readiness and startup probes (exec, httpGet, tcpSocket).

Mirrors kubelet's ``pkg/kubelet/prober`` (worker.go, prober.go): one task per
(container instance, probe kind) runs the probe every ``periodSeconds`` after
``initialDelaySeconds``; a result flips only after ``successThreshold`` /
``failureThreshold`` consecutive outcomes. Readiness starts as failure,
liveness as success. When a result flips the pod's worker is poked so the
status is recomputed (readiness) or the container restarted (liveness).

Exec probes run through CRI ``ExecSync``; HTTP and TCP probes connect to the
pod IP (the node IP for hostNetwork pods) from edged itself.

Timing fields get Kubernetes' defaults and minimums (:func:`probe_timing`): a
missing or zero value is defaulted silently, as the API server's defaulting
does; a value the API server would refuse (negative, not an integer) is
replaced by the default and logged once per pod. A worker never dies of its
probe's spec: the container's readiness would otherwise freeze unseen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgecore.edged.cri import CRIClient
from edgecore.edged.errors import CRIError

__all__ = ["ProbeManager", "ProbeTiming", "probe_timing", "run_probe"]

log = logging.getLogger(__name__)

KINDS = ("livenessProbe", "readinessProbe", "startupProbe")
_INT32_MAX = 2**31 - 1
_WARNED_MAX = 4096


@dataclass(frozen=True, slots=True)
class ProbeTiming:
    """A probe's timing fields after Kubernetes' defaulting, all in range."""

    period: int = 10
    timeout: int = 1
    success_threshold: int = 1
    failure_threshold: int = 3
    initial_delay: int = 0


#: field -> (attribute, default, minimum); a zero gets the default where the minimum is 1
_TIMING_FIELDS = (
    ("periodSeconds", "period", 10, 1),
    ("timeoutSeconds", "timeout", 1, 1),
    ("successThreshold", "success_threshold", 1, 1),
    ("failureThreshold", "failure_threshold", 3, 1),
    ("initialDelaySeconds", "initial_delay", 0, 0),
)


def probe_timing(
    probe: dict[str, Any], kind: str = "", *, default_timeout: int = 1
) -> tuple[ProbeTiming, list[str]]:
    """The probe's timing and the problems found (each value replaced by its default)."""
    values: dict[str, int] = {}
    problems: list[str] = []
    for name, attr, default, minimum in _TIMING_FIELDS:
        if attr == "timeout":
            default = max(1, default_timeout)
        raw = probe.get(name)
        value: int | None = None
        if isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        elif isinstance(raw, float) and raw.is_integer():
            value = int(raw)
        if raw is None or (value == 0 and minimum > 0):
            values[attr] = default  # unset: the API server's defaulting
        elif value is None or value < minimum or value > _INT32_MAX:
            problems.append(f"{name}={raw!r} is invalid, using {default}")
            values[attr] = default
        else:
            values[attr] = value
    if kind in ("livenessProbe", "startupProbe") and values["success_threshold"] != 1:
        problems.append(
            f"successThreshold={probe.get('successThreshold')!r} must be 1 for {kind}, using 1"
        )
        values["success_threshold"] = 1
    return ProbeTiming(**values), problems


def _port(port: Any, container: dict[str, Any]) -> int:
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"named port {port!r} not found in container {container.get('name')}")


async def _http_get(host: str, port: int, spec: dict[str, Any], timeout: float) -> tuple[bool, str]:
    path = spec.get("path") or "/"
    if not path.startswith("/"):
        path = "/" + path
    if (spec.get("scheme") or "HTTP").upper() == "HTTPS":
        import ssl

        ctx: ssl.SSLContext | None = ssl.create_default_context()
        assert ctx is not None
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # kubelet does not verify probe certificates either
    else:
        ctx = None
    headers = {"Host": f"{host}:{port}", "User-Agent": "kube-probe/1.32", "Accept": "*/*"}
    for h in spec.get("httpHeaders") or []:
        headers[h["name"]] = h["value"]
    for k, v in headers.items():
        if any(ch in k + v for ch in "\r\n"):
            return False, "invalid header in probe"
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port, ssl=ctx)
        try:
            head = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            writer.write((head + "Connection: close\r\n\r\n").encode())
            await writer.drain()
            line = await reader.readline()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
    parts = line.decode(errors="replace").split()
    if len(parts) < 2 or not parts[1].isdigit():
        return False, f"malformed HTTP response {line[:80]!r}"
    code = int(parts[1])
    return 200 <= code < 400, f"HTTP probe failed with statuscode: {code}"


async def run_probe(
    cri: CRIClient,
    probe: dict[str, Any],
    *,
    container: dict[str, Any],
    container_id: str,
    host: str,
    default_timeout: int,
) -> tuple[bool, str]:
    """Run ``probe`` once; returns (success, message)."""
    timeout = probe_timing(probe, default_timeout=default_timeout)[0].timeout
    try:
        if "exec" in probe:
            command = probe["exec"]["command"]
            if not isinstance(command, list) or not command:
                raise TypeError("exec.command must be a non-empty list")
            code, out = await cri.exec_sync(container_id, [str(a) for a in command], timeout)
            return code == 0, out.decode(errors="replace")[:256]
        if "httpGet" in probe:
            spec = probe["httpGet"]
            return await _http_get(
                spec.get("host") or host, _port(spec["port"], container), spec, timeout
            )
        if "tcpSocket" in probe:
            spec = probe["tcpSocket"]
            async with asyncio.timeout(timeout):
                _, writer = await asyncio.open_connection(
                    spec.get("host") or host, _port(spec["port"], container)
                )
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            return True, ""
        if "grpc" in probe:
            return False, "grpc probes are not supported by edged"
    except (TimeoutError, OSError, CRIError, ValueError) as exc:
        return False, f"probe error: {exc}"
    except (KeyError, TypeError, AttributeError) as exc:
        # A malformed probe spec (the API server would have refused it) is a
        # failing probe with a reason; raising would kill the probe worker
        # silently and freeze the container's result at its initial value.
        return False, f"probe error: malformed probe {exc!r}"
    return False, "probe has no handler"


@dataclass
class _Worker:
    task: asyncio.Task[None]
    result: bool | None  # None: not known yet (a startup probe before its verdict)


@dataclass
class ProbeManager:
    """Probe workers of every running container, keyed by (container id, kind).

    ``on_change(pod_uid)`` is called when a result flips.
    """

    cri: CRIClient
    on_change: Callable[[str], None]
    default_timeout: int = 1
    _workers: dict[tuple[str, str], _Worker] = field(default_factory=dict)
    #: pods whose invalid probe timing was logged already (once per pod, not per
    #: container restart); the oldest are forgotten past _WARNED_MAX
    _warned: dict[str, None] = field(default_factory=dict)

    def result(self, container_id: str, kind: str) -> bool | None:
        """The current result; ``None`` when unknown or the container has no such probe."""
        w = self._workers.get((container_id, kind))
        return None if w is None else w.result

    def ensure(self, pod_uid: str, container: dict[str, Any], container_id: str, host: str) -> None:
        """Start the probe workers of a running container (idempotent)."""
        for kind in KINDS:
            probe = container.get(kind)
            key = (container_id, kind)
            if not probe or key in self._workers:
                continue
            # kubelet's initial results: liveness passes, readiness fails, startup unknown.
            initial: bool | None = {"livenessProbe": True, "readinessProbe": False}.get(kind)
            task = asyncio.create_task(
                self._loop(pod_uid, key, probe, container, host),
                name=f"probe-{kind}-{container.get('name')}-{container_id[:12]}",
            )
            self._workers[key] = _Worker(task, initial)

    def forget_except(self, live_ids: set[str]) -> None:
        """Stop workers of containers not in ``live_ids``."""
        for key in [k for k in self._workers if k[0] not in live_ids]:
            self._workers.pop(key).task.cancel()

    async def close(self) -> None:
        workers = list(self._workers.values())
        self._workers.clear()
        for w in workers:
            w.task.cancel()
        for w in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await w.task

    async def _loop(
        self,
        pod_uid: str,
        key: tuple[str, str],
        probe: dict[str, Any],
        container: dict[str, Any],
        host: str,
    ) -> None:
        container_id, kind = key
        timing, problems = probe_timing(probe, kind, default_timeout=self.default_timeout)
        if problems and pod_uid not in self._warned:
            self._warned[pod_uid] = None
            if len(self._warned) > _WARNED_MAX:
                del self._warned[next(iter(self._warned))]
            log.warning(
                "pod %s: %s of %s: %s",
                pod_uid,
                kind,
                container.get("name"),
                "; ".join(problems),
            )
        # run_probe reads the timeout from the spec: hand it the checked one
        probe = {**probe, "timeoutSeconds": timing.timeout}
        period = timing.period
        success_needed = timing.success_threshold
        failure_needed = timing.failure_threshold
        if kind != "startupProbe" and container.get("startupProbe"):
            # Liveness and readiness start only once the startup probe succeeded.
            while self.result(container_id, "startupProbe") is not True:
                if key not in self._workers:
                    return
                await asyncio.sleep(1)
        await asyncio.sleep(timing.initial_delay)
        successes = failures = 0
        while True:
            try:
                ok, message = await run_probe(
                    self.cri,
                    probe,
                    container=container,
                    container_id=container_id,
                    host=host,
                    default_timeout=self.default_timeout,
                )
            except Exception as exc:
                # anything run_probe did not foresee is a failed run, never a dead worker
                log.exception(
                    "%s of %s (%s) raised", kind, container.get("name"), container_id[:12]
                )
                ok, message = False, f"probe error: {type(exc).__name__}: {exc}"
            worker = self._workers.get(key)
            if worker is None:
                return
            if ok:
                successes, failures = successes + 1, 0
            else:
                successes, failures = 0, failures + 1
                log.info(
                    "%s of %s (%s) failed (%d/%d): %s",
                    kind,
                    container.get("name"),
                    container_id[:12],
                    failures,
                    failure_needed,
                    message.strip(),
                )
            new = worker.result
            if kind == "startupProbe" and worker.result is True:
                return  # a startup probe stops once it succeeded
            if ok and successes >= success_needed:
                new = True
            elif not ok and failures >= failure_needed:
                new = False
            if new != worker.result:
                worker.result = new
                log.info("%s of %s is now %s", kind, container.get("name"), new)
                self.on_change(pod_uid)
            await asyncio.sleep(period)
