"""RBAC object names follow kube's path-segment rule, not the DNS subdomain rule."""

from __future__ import annotations

from devkube_raw import Raw

RBAC = "/apis/rbac.authorization.k8s.io/v1"


async def test_cluster_role_names_may_hold_a_colon(raw: Raw) -> None:
    # kube-apiserver ships ClusterRoles named "system:node"; keadm names its own
    # "kubeedge-py:cloudcore" the same way.
    body = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "kubeedge-py:cloudcore"}, "rules": []}
    status, created = await raw.post(f"{RBAC}/clusterroles", body)
    assert status == 201, created
    assert created["metadata"]["name"] == "kubeedge-py:cloudcore"


async def test_rbac_names_refuse_slash_and_dot_dot(raw: Raw) -> None:
    for name, why in (("a/b", "may not contain '/'"), ("..", "may not be '..'")):
        body = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": name}, "rules": []}
        status, refused = await raw.post(f"{RBAC}/namespaces/default/roles", body)
        assert status == 422, refused
        assert why in refused["message"]
