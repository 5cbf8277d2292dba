"""Probe runs: a malformed probe is a failed probe, not a dead probe worker."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from edgecore.edged.probes import ProbeManager, probe_timing, run_probe
from fixtures.minicloud import wait_until


@pytest.mark.parametrize(
    "probe",
    [
        {"httpGet": {"path": "/healthz"}},  # no port
        {"tcpSocket": {}},  # no port
        {"exec": {}},  # no command
        {"httpGet": {"port": 80, "httpHeaders": [{"value": "x"}]}},  # header without a name
    ],
)
async def test_a_malformed_probe_fails_with_a_reason(probe: dict[str, Any]) -> None:
    # Such a probe used to raise out of the probe loop: its worker task died
    # unseen and the container kept its initial result (never Ready) forever.
    ok, message = await run_probe(
        None,  # type: ignore[arg-type]  # not reached: the spec is refused first
        probe,
        container={"name": "c", "ports": []},
        container_id="0123456789abcdef",
        host="127.0.0.1",
        default_timeout=1,
    )
    assert not ok
    assert message.startswith("probe error:")


@pytest.mark.parametrize(
    ("field", "raw", "expected"),
    [
        ("periodSeconds", None, 10),
        ("periodSeconds", 0, 10),  # unset in the API: defaulted
        ("periodSeconds", -3, 10),
        ("periodSeconds", "5", 10),
        ("periodSeconds", 7, 7),
        ("timeoutSeconds", -1, 1),
        ("timeoutSeconds", "x", 1),
        ("timeoutSeconds", 4.0, 4),
        ("failureThreshold", -1, 3),
        ("failureThreshold", True, 3),
        ("failureThreshold", 2, 2),
        ("initialDelaySeconds", -5, 0),
        ("initialDelaySeconds", "soon", 0),
        ("initialDelaySeconds", 0, 0),
        ("initialDelaySeconds", 2**40, 0),
    ],
)
def test_probe_timing_applies_kubernetes_defaults_and_minimums(
    field: str, raw: Any, expected: int
) -> None:
    attr = {
        "periodSeconds": "period",
        "timeoutSeconds": "timeout",
        "failureThreshold": "failure_threshold",
        "initialDelaySeconds": "initial_delay",
    }[field]
    probe: dict[str, Any] = {"tcpSocket": {"port": 1}}
    if raw is not None:
        probe[field] = raw
    timing, problems = probe_timing(probe, "readinessProbe")
    assert getattr(timing, attr) == expected
    valid = raw is None or (raw == 0 and not isinstance(raw, bool)) or raw == expected
    assert bool(problems) is not valid
    if problems:
        assert field in problems[0]


def test_liveness_success_threshold_must_be_one() -> None:
    timing, problems = probe_timing({"successThreshold": 3}, "livenessProbe")
    assert timing.success_threshold == 1
    assert problems and "successThreshold" in problems[0]
    timing, problems = probe_timing({"successThreshold": 3}, "readinessProbe")
    assert timing.success_threshold == 3 and not problems


async def test_a_probe_with_invalid_timing_still_runs_and_is_logged_once_per_pod(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    bad = {
        "tcpSocket": {"port": port},
        "periodSeconds": "often",
        "timeoutSeconds": -2,
        "failureThreshold": -1,
        "initialDelaySeconds": -5,
    }
    changed: list[str] = []
    manager = ProbeManager(None, changed.append)  # type: ignore[arg-type]  # tcp needs no CRI
    caplog.set_level(logging.WARNING, logger="edgecore.edged.probes")
    try:
        for name, cid in (("a", "a" * 64), ("b", "b" * 64)):
            manager.ensure("pod-uid-1", {"name": name, "readinessProbe": bad}, cid, "127.0.0.1")
        # the workers survive their spec: both containers become Ready
        await wait_until(
            lambda: manager.result("a" * 64, "readinessProbe") is True
            and manager.result("b" * 64, "readinessProbe") is True,
            timeout=5.0,
        )
        assert changed == ["pod-uid-1", "pod-uid-1"]
        warnings = [r for r in caplog.records if "pod-uid-1" in r.getMessage()]
        assert len(warnings) == 1
        text = warnings[0].getMessage()
        assert "periodSeconds='often'" in text and "initialDelaySeconds=-5" in text
    finally:
        await manager.close()
        server.close()
        await server.wait_closed()
