"""Pure checks shared by the hub transports: connection headers and node authentication."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudcore.cloudhub.tls import authenticate_node
from cloudcore.cloudhub.transport.common import ConnectionInfo, check_connection_headers
from kecommon import certs


def test_good_headers() -> None:
    got = check_connection_headers(
        {"node_id": "edge-1.zone", "project_id": "p", "connectionuse": "msg"}
    )
    assert got == ConnectionInfo("edge-1.zone", "p")
    # project_id is optional (KubeEdge does not use it for routing)
    assert check_connection_headers({"node_id": "e", "connectionuse": "msg"}) == ConnectionInfo(
        "e", ""
    )


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"node_id": "e"}, "missing ConnectionUse"),
        ({"node_id": "e", "connectionuse": "str"}, "unsupported ConnectionUse"),
        ({"node_id": "e", "connectionuse": "MSG"}, "unsupported ConnectionUse"),
        ({"connectionuse": "msg"}, "missing node_id"),
        ({"node_id": "a/b", "connectionuse": "msg"}, "not a valid node name"),
        ({"node_id": "Edge", "connectionuse": "msg"}, "not a valid node name"),
        ({"node_id": "-e", "connectionuse": "msg"}, "not a valid node name"),
        ({"node_id": "e" * 254, "connectionuse": "msg"}, "not a valid node name"),
        ({"node_id": "e", "connectionuse": "msg", "project_id": "a\nb"}, "project_id"),
    ],
)
def test_bad_headers(headers: dict[str, str], reason: str) -> None:
    got = check_connection_headers(headers)
    assert isinstance(got, str) and reason in got


@given(st.text(max_size=40))
def test_any_node_id_is_either_a_clean_name_or_refused(node_id: str) -> None:
    got = check_connection_headers({"node_id": node_id, "connectionuse": "msg"})
    if isinstance(got, ConnectionInfo):
        assert "/" not in got.node_id and got.node_id == got.node_id.lower().strip()
        assert got.node_id


@pytest.fixture(scope="module")
def ca() -> certs.CertPair:
    return certs.new_ca()


def node_cert_der(ca: certs.CertPair, node: str, **kw: object) -> bytes:
    csr = certs.verify_csr(certs.new_csr(node, certs.new_key()), node)
    return certs.cert_to_der(certs.sign_edge_cert(ca, csr, **kw))  # type: ignore[arg-type]


def test_authenticate_node(ca: certs.CertPair) -> None:
    der = node_cert_der(ca, "n1")
    assert authenticate_node([der], ca.cert, "n1") is None
    assert "does not match" in str(authenticate_node([der], ca.cert, "n2"))
    assert authenticate_node([der], ca.cert, "n2", check_cn=False) is None
    assert "required" in str(authenticate_node([], ca.cert, "n1"))
    assert "exactly one" in str(authenticate_node([der, der], ca.cert, "n1"))
    assert "cannot be parsed" in str(authenticate_node([b"junk"], ca.cert, "n1"))
    other = certs.new_ca()
    for check in (True, False):
        got = authenticate_node([der], other.cert, "n1", check_cn=check)
        assert "not signed by the KubeEdge CA" in str(got)
    old = node_cert_der(ca, "n1", days=1, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
    assert "expired" in str(authenticate_node([old], ca.cert, "n1"))
    assert "validity" in str(authenticate_node([old], ca.cert, "n1", check_cn=False))
