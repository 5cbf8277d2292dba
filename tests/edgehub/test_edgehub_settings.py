"""Settings come from KubeEdge's edgecore.yaml keys through kecommon.config."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgecore import app
from edgecore.edgehub import settings as hub_settings
from edgecore.metamanager import settings as meta_settings
from kecommon.config import parse_edgecore_config

YAML = """
apiVersion: edgecore.config.kubeedge.io/v1alpha2
kind: EdgeCore
database:
  dataSource: /tmp/x/edge.db
modules:
  edged:
    hostnameOverride: edge-7
  metaManager:
    remoteQueryTimeout: 9
  edgeHub:
    heartbeat: 5
    messageQPS: 7
    messageBurst: 11
    projectID: p1
    httpServer: https://cloud.example:10002
    token: abc
    tlsCaFile: /c/ca.crt
    tlsCertFile: /c/e.crt
    tlsPrivateKeyFile: /c/e.key
    rotateCertificates: false
    websocket:
      enable: false
      server: cloud.example:10000
    quic:
      enable: true
      server: cloud.example:10001
      handshakeTimeout: 12
      writeDeadline: 4
"""


def _cfg() -> object:
    return parse_edgecore_config(YAML)


def test_edgehub_settings_from_edgecore_yaml(tmp_path: Path) -> None:
    s = hub_settings.from_config(_cfg(), config_file=tmp_path / "edgecore.yaml")
    assert (s.node_name, s.project_id, s.heartbeat) == ("edge-7", "p1", 5)
    assert (s.message_qps, s.message_burst) == (7, 11)
    assert s.use_quic and s.quic_server == "cloud.example:10001"
    assert (s.handshake_timeout, s.write_timeout) == (12, 4)
    assert s.http_server == "https://cloud.example:10002" and s.token == "abc"
    assert (s.tls_ca_file, s.tls_cert_file, s.tls_private_key_file) == (
        Path("/c/ca.crt"),
        Path("/c/e.crt"),
        Path("/c/e.key"),
    )
    assert not s.rotate_certificates
    assert s.config_file == tmp_path / "edgecore.yaml"
    assert s.bootstrap_token_file == Path("/etc/kubeedge/bootstrap-edgecore.conf")


def test_metamanager_settings_from_edgecore_yaml() -> None:
    m = meta_settings.from_config(_cfg())
    assert (m.data_source, m.remote_query_timeout, m.hub_module) == (
        "/tmp/x/edge.db",
        9,
        "websocket",
    )


def test_registry_has_kubeedge_module_names() -> None:
    registry = app.build_registry(_cfg())
    names = [(r.module.name, r.module.group) for r in registry]
    assert names[:2] == [("websocket", "hub"), ("metamanager", "meta")]
    assert ("edged", "edged") in names
    restart = {r.module.name: r.restart.mode for r in registry}
    assert restart["websocket"] == "never" and restart["metamanager"] == "on-failure"


@pytest.mark.parametrize("token", ["a.b.c.d", "  a.b.c.d\n"])
def test_token_file_wins(tmp_path: Path, token: str) -> None:
    f = tmp_path / "bootstrap-edgecore.conf"
    f.write_text(token)
    s = hub_settings.EdgeHubSettings(
        node_name="n", http_server="h", token="x.y.z.w", bootstrap_token_file=f
    )
    assert s.token_value() == "a.b.c.d"
    f.write_text("")
    assert s.token_value() == "x.y.z.w"
