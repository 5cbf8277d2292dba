"""What edged sends has KubeEdge's shapes (golden: kubeedge-1.23-ws-pods.jsonl).

Pure tests: no containerd, no network.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edgecore.edged import status as podstatus
from edgecore.edged.backoff import Backoff
from edgecore.edged.node import MachineInfo, build_node, build_status, node_status_patch
from edgecore.edged.podconfig import expand_vars, write_atomic
from edgecore.edged.quantity import QuantityError, cpu_millis, to_bytes
from edgecore.edged.settings import EdgedSettings

CAPTURE = Path(__file__).resolve().parents[1] / "data" / "captures"


def _capture() -> list[dict[str, Any]]:
    for base in (CAPTURE, Path("/work/shared/captures")):
        path = base / "kubeedge-1.23-ws-pods.jsonl"
        if path.exists():
            return [json.loads(line) for line in path.read_text().splitlines() if line != "null"]
    pytest.fail("the KubeEdge capture kubeedge-1.23-ws-pods.jsonl is missing")


def _edge_requests(kind: str) -> list[dict[str, Any]]:
    out = []
    for line in _capture():
        frame = line.get("frame") or {}
        route = frame.get("route") or {}
        if (
            line["dir"] == "edge->cloud"
            and route.get("source") == "edged"
            and f"/{kind}/" in route.get("resource", "")
        ):
            out.append(frame)
    return out


def _keys(d: dict[str, Any]) -> set[str]:
    return set(d)


MACHINE = MachineInfo(
    cpus=2,
    memory_ki=24684096,
    storage_ki=264212084,
    machine_id="m",
    system_uuid="u",
    boot_id="b",
    kernel="6.1",
    os_image="Debian GNU/Linux 12 (bookworm)",
)


def test_registered_node_has_kubeedge_shape() -> None:
    captured = _edge_requests("node")[0]["content"]
    settings = EdgedSettings(node_name="capture-edge", node_ip="127.0.0.1")
    status = build_status(
        settings,
        MACHINE,
        runtime_version="containerd://1.6.20",
        runtime_ready=True,
        runtime_message="",
        now=0.0,
        previous=None,
    )
    node = build_node(settings, status)
    assert node["metadata"]["labels"] == captured["metadata"]["labels"]
    assert node["metadata"]["annotations"] == captured["metadata"]["annotations"]
    assert _keys(node) == _keys(captured)
    assert _keys(node["status"]) == _keys(captured["status"])
    for key in ("capacity", "allocatable", "nodeInfo"):
        assert _keys(node["status"][key]) == _keys(captured["status"][key]), key
    # The capture's machine had exactly these facts: the numbers match kubelet's.
    assert node["status"]["capacity"] == captured["status"]["capacity"]
    assert node["status"]["allocatable"]["memory"] == captured["status"]["allocatable"]["memory"]
    assert [c["type"] for c in node["status"]["conditions"]] == [
        c["type"] for c in captured["status"]["conditions"]
    ]
    assert [_keys(c) for c in node["status"]["conditions"]] == [
        _keys(c) for c in captured["status"]["conditions"]
    ]
    assert node["status"]["addresses"] == captured["status"]["addresses"]


def test_node_status_patch_like_kubeedge() -> None:
    settings = EdgedSettings(node_name="capture-edge", node_ip="127.0.0.1")
    old = build_status(
        settings,
        MACHINE,
        runtime_version="containerd://1.6.20",
        runtime_ready=False,
        runtime_message="runtime not ready",
        now=0.0,
        previous=None,
    )
    new = build_status(
        settings,
        MACHINE,
        runtime_version="containerd://1.6.20",
        runtime_ready=True,
        runtime_message="",
        now=10.0,
        previous=old,
    )
    patch = node_status_patch(old, new, heartbeat=False)
    captured = json.loads(_edge_requests("nodepatch")[1]["content"])
    assert patch is not None
    assert _keys(patch["status"]) == _keys(captured["status"])
    assert (
        patch["status"]["$setElementOrder/conditions"]
        == captured["status"]["$setElementOrder/conditions"]
    )
    (ready,) = patch["status"]["conditions"]
    cap_ready = captured["status"]["conditions"][0]
    assert {k: ready[k] for k in ("type", "status", "reason", "message")} == cap_ready
    # Nothing changed: nothing to send, unless a heartbeat report is due.
    again = build_status(
        settings,
        MACHINE,
        runtime_version="containerd://1.6.20",
        runtime_ready=True,
        runtime_message="",
        now=20.0,
        previous=new,
    )
    assert node_status_patch(new, again, heartbeat=False) is None
    beat = node_status_patch(new, again, heartbeat=True)
    assert beat is not None and len(beat["status"]["conditions"]) == 4


def _pod() -> dict[str, Any]:
    pod_frame = next(
        line["frame"]
        for line in _capture()
        if line["dir"] == "cloud->edge"
        and (line.get("frame") or {}).get("route", {}).get("operation") == "insert"
        and "/pod/" in line["frame"]["route"]["resource"]
    )
    return pod_frame["content"]  # type: ignore[no-any-return]


def test_pod_status_patches_match_kubelet() -> None:
    pod = _pod()
    uid = pod["metadata"]["uid"]
    captured = [json.loads(f["content"]) for f in _edge_requests("podpatch")]
    creating = podstatus.build_status(
        pod,
        [podstatus.ContainerView(name="c", image="localhost/busybox:latest")],
        sandbox_ready=False,
        pod_ip="",
        host_ip="127.0.0.1",
        start_time=0.0,
        now=0.0,
        previous=pod["status"],
    )
    first = podstatus.status_patch(uid, pod["status"], creating)
    assert first is not None and first["metadata"] == {"uid": uid}
    assert {c["type"] for c in first["status"]["conditions"]} == {
        c["type"] for c in captured[0]["status"]["conditions"]
    }
    assert first["status"]["containerStatuses"][0]["state"] == {
        "waiting": {"reason": "ContainerCreating"}
    }
    assert _keys(first["status"]["containerStatuses"][0]) == _keys(
        captured[0]["status"]["containerStatuses"][0]
    )
    assert (
        first["status"]["containerStatuses"][0]["volumeMounts"]
        == (captured[0]["status"]["containerStatuses"][0]["volumeMounts"])
    )
    running = podstatus.build_status(
        pod,
        [
            podstatus.ContainerView(
                name="c",
                image="localhost/busybox:latest",
                state="running",
                container_id="containerd://abc",
                image_id="sha256:def",
                started_at=1.0,
                ready=True,
            )
        ],
        sandbox_ready=True,
        pod_ip="10.244.0.195",
        host_ip="127.0.0.1",
        start_time=0.0,
        now=1.0,
        previous=creating,
    )
    second = podstatus.status_patch(uid, creating, running)
    assert second is not None
    cap = captured[1]["status"]
    assert _keys(second["status"]) <= _keys(cap) | {"phase"}
    assert second["status"]["$setElementOrder/conditions"] == cap["$setElementOrder/conditions"]
    mine = {c["type"]: c for c in second["status"]["conditions"]}
    theirs = {c["type"]: c for c in cap["conditions"]}
    assert set(mine) == set(theirs)
    assert mine["Ready"]["message"] is None and mine["Ready"]["reason"] is None
    assert mine["Ready"]["status"] == "True"
    assert second["status"]["phase"] == "Running"
    assert second["status"]["podIPs"] == [{"ip": "10.244.0.195"}]
    assert _keys(second["status"]["containerStatuses"][0]) == _keys(cap["containerStatuses"][0])
    # No change, no patch.
    assert podstatus.status_patch(uid, running, running) is None


@pytest.mark.parametrize(
    ("policy", "states", "terminal", "phase"),
    [
        ("Always", ["running"], False, "Running"),
        ("Always", ["waiting"], False, "Pending"),
        ("Never", ["terminated:0"], False, "Succeeded"),
        ("Never", ["terminated:1"], False, "Failed"),
        ("OnFailure", ["terminated:1"], False, "Running"),
        ("OnFailure", ["terminated:0"], False, "Succeeded"),
        ("Always", ["terminated:137"], True, "Failed"),
        ("Always", ["terminated:0"], True, "Succeeded"),
    ],
)
def test_pod_phase(policy: str, states: list[str], terminal: bool, phase: str) -> None:
    views = []
    for s in states:
        state, _, code = s.partition(":")
        views.append(
            podstatus.ContainerView(
                name="c", image="i", state=state, exit_code=int(code) if code else None
            )
        )
    assert podstatus.pod_phase(policy, views, terminal=terminal) == phase


def test_backoff_like_kubelet() -> None:
    b = Backoff(initial=10, maximum=40)
    assert b.remaining("k", finished_at=100, now=100) == 0  # first crash: restart at once
    assert b.next("k", 100) == 10
    assert b.remaining("k", finished_at=105, now=106) == 9  # second crash: wait 10 s
    assert b.next("k", 115) == 20
    assert b.next("k", 140) == 40
    assert b.next("k", 190) == 40  # capped
    assert b.remaining("k", finished_at=1000, now=1000) == 0  # quiet for 2*max: reset
    assert b.next("k", 1000) == 10


def test_quantities() -> None:
    assert cpu_millis("250m") == 250
    assert cpu_millis("1.5") == 1500
    assert cpu_millis(2) == 2000
    assert to_bytes("64Mi") == 64 * 2**20
    assert to_bytes("1G") == 10**9
    assert to_bytes("1e3") == 1000
    with pytest.raises(QuantityError):
        to_bytes("lots")


def test_expand_vars() -> None:
    env = {"A": "x", "B": "y"}
    assert expand_vars("$(A)-$(B)-$(C)-$$(A)", env) == "x-y-$(C)-$(A)"


def test_write_atomic_swaps_content(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    assert write_atomic(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    assert (target / "a").read_bytes() == b"1" and (target / "a").is_symlink()
    assert (target / "dir" / "b").read_bytes() == b"2"
    assert not write_atomic(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    assert write_atomic(target, {"a": (b"3", 0o644)})
    assert (target / "a").read_bytes() == b"3"
    assert not (target / "dir").exists()
    assert (
        len(
            [
                p
                for p in target.iterdir()
                if p.name.startswith("..") and p.is_dir() and not p.is_symlink()
            ]
        )
        == 1
    )
    with pytest.raises(Exception, match="inside the volume"):
        write_atomic(target, {"../escape": (b"x", 0o644)})
