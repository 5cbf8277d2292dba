"""edged's settings from edgecore.yaml: KubeEdge's keys and our ``modules.edged``
extension keys (podBackoff, relistIntervalSeconds, maxConcurrentSyncs), and the
staticPodPath warning. Pure: no containerd."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from edgecore.edged.module import Edged
from edgecore.edged.settings import EdgedSettings, static_pod_manifests
from kecommon.config import ConfigError
from kecommon.config.loading import parse_edgecore_config

EXTENSIONS = """\
modules:
  edged:
    hostnameOverride: edge-x
    nodeIP: 10.0.0.5
    podBackoff:
      initialSeconds: 1.5
      maxSeconds: 12
    relistIntervalSeconds: 0.5
    maxConcurrentSyncs: 3
    tailoredKubeletConfig:
      syncFrequency: 30s
      staticPodPath: /srv/manifests
"""


def test_extension_keys_map_onto_edged_settings() -> None:
    cfg = parse_edgecore_config(EXTENSIONS)
    s = EdgedSettings.from_config(cfg)
    assert (s.backoff_initial, s.backoff_max) == (1.5, 12.0)
    assert s.relist_interval == 0.5
    assert s.max_concurrent_syncs == 3
    assert s.resync_interval == 30.0
    assert s.static_pod_path == Path("/srv/manifests")
    # implemented, so never in the "accepted but not implemented" report
    assert not [k for k in cfg.unimplemented() if k.startswith("modules.edged")]


def test_defaults_are_kubelets() -> None:
    cfg = parse_edgecore_config("modules:\n  edged:\n    nodeIP: 1.2.3.4\n")
    s = EdgedSettings.from_config(cfg)
    assert (s.backoff_initial, s.backoff_max) == (10.0, 300.0)
    assert s.relist_interval == 1.0
    assert s.max_concurrent_syncs == 8


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("podBackoff:\n      initialSeconds: 0", "modules.edged.podBackoff.initialSeconds"),
        ("podBackoff:\n      initialSeconds: 20\n      maxSeconds: 10", "modules.edged.podBackoff"),
        ("relistIntervalSeconds: fast", "modules.edged.relistIntervalSeconds"),
        ("maxConcurrentSyncs: 0", "modules.edged.maxConcurrentSyncs"),
    ],
)
def test_bad_extension_values_name_the_key(text: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_edgecore_config(f"modules:\n  edged:\n    {text}\n")
    assert key in str(info.value)


def test_static_pod_manifests_are_found(tmp_path: Path) -> None:
    assert static_pod_manifests(None) == []
    assert static_pod_manifests(tmp_path / "missing") == []
    (tmp_path / "web.yaml").write_text("kind: Pod\n")
    (tmp_path / "db.json").write_text("{}")
    (tmp_path / ".hidden.yaml").write_text("")
    (tmp_path / "README").write_text("")
    assert [p.name for p in static_pod_manifests(tmp_path)] == ["db.json", "web.yaml"]


def test_static_pods_are_warned_about_only_when_manifests_exist(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """edged runs no static pods: it says so at start when there are manifests, and is
    silent about an empty or missing staticPodPath."""
    caplog.set_level(logging.INFO, logger="edgecore.edged.module")

    def warned(path: Path) -> list[str]:
        caplog.clear()
        Edged(EdgedSettings(node_name="n1", static_pod_path=path)).warn_static_pods()
        return [r.getMessage() for r in caplog.records if "static pods" in r.getMessage()]

    assert warned(tmp_path / "missing") == []
    empty = tmp_path / "empty"
    empty.mkdir()
    assert warned(empty) == []
    full = tmp_path / "manifests"
    full.mkdir()
    (full / "web.yaml").write_text("kind: Pod\n")
    lines = warned(full)
    assert len(lines) == 1 and "web.yaml" in lines[0] and str(full) in lines[0]
