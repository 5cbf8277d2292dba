"""Probe runs: a malformed probe is a failed probe, not a dead probe worker."""

from __future__ import annotations

from typing import Any

import pytest

from edgecore.edged.probes import run_probe


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
