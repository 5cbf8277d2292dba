"""The private containerd and the locally built images."""

from __future__ import annotations

import ipaddress
import json
import tarfile
from pathlib import Path

import pytest

from edgecore.edged import localimage
from edgecore.edged.cri import CRIClient
from edgecore.edged.devcontainerd import DevContainerd, derived_subnet
from fixtures.containerd import BUSYBOX_IMAGE, LOCAL_BUSYBOX_IMAGE


def test_archive_is_deterministic_oci_layout(tmp_path: Path) -> None:
    a = localimage.build_oci_archive(tmp_path / "a.tar")
    b = localimage.build_oci_archive(tmp_path / "b.tar")
    assert a == b
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    with tarfile.open(tmp_path / "a.tar") as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        names = {m["annotations"]["io.containerd.image.name"] for m in index["manifests"]}
        assert names == {
            "docker.io/library/busybox:latest",
            "kubeedge-py.local/busybox:latest",
            "registry.k8s.io/pause:3.6",
            "docker.io/kubeedge/pause:3.6",
        }
        for m in index["manifests"]:
            blob = tar.extractfile("blobs/sha256/" + m["digest"].split(":")[1])
            assert blob is not None
            manifest = json.load(blob)
            layer = manifest["layers"][0]["digest"].split(":")[1]
            layer_tar = tar.extractfile("blobs/sha256/" + layer)
            assert layer_tar is not None
            with tarfile.open(fileobj=layer_tar) as lt:
                sh = lt.getmember("bin/sh")
                assert sh.issym() and sh.linkname == "busybox"
                assert lt.getmember("bin/busybox").isfile()


@pytest.mark.parametrize(
    ("name", "normal"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("kubeedge/pause:3.6", "docker.io/kubeedge/pause:3.6"),
        ("registry.k8s.io/pause:3.6", "registry.k8s.io/pause:3.6"),
        ("localhost/busybox", "localhost/busybox:latest"),
        ("kubeedge-py.local/busybox:latest", "kubeedge-py.local/busybox:latest"),
    ],
)
def test_normalize_name(name: str, normal: str) -> None:
    assert localimage.normalize_name(name) == normal


def test_missing_busybox_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(localimage.ImageImportError, match="busybox-static"):
        localimage.build_oci_archive(tmp_path / "x.tar", busybox=tmp_path / "nope")


@pytest.mark.containerd
async def test_private_containerd_is_ready_with_local_images(
    containerd: DevContainerd, cri: CRIClient
) -> None:
    v = await cri.version()
    assert v.runtime_name == "containerd"
    conditions = {c.type: c.status for c in (await cri.status()).status.conditions}
    assert conditions == {"RuntimeReady": True, "NetworkReady": True}
    tags = {t for im in await cri.list_images() for t in im.repo_tags}
    assert {BUSYBOX_IMAGE, LOCAL_BUSYBOX_IMAGE, "registry.k8s.io/pause:3.6"} <= tags
    assert "docker.io/kubeedge/pause:3.6" in tags
    assert "restrict_oom_score_adj = true" in containerd.config_path.read_text()


def test_pod_subnets_stay_clear_of_the_kubernetes_service_range(tmp_path: Path) -> None:
    # A pod IP inside 10.96.0.0/12 shadows Service IPs once the node joins a
    # real cluster (the demo's pod once got 10.96.243.2).
    services = ipaddress.ip_network("10.96.0.0/12")
    seen = set()
    for i in range(300):
        subnet = ipaddress.ip_network(DevContainerd(tmp_path / f"c{i}").subnet)
        assert subnet.prefixlen == 24
        assert subnet.subnet_of(ipaddress.ip_network("10.88.0.0/13"))
        assert not subnet.overlaps(services)
        seen.add(subnet)
    assert len(seen) > 250  # distinct work dirs get distinct bridges (2,048 /24s to pick from)
    for tag in ("00000000", "ffffffff", "000007ff", "00000800"):
        assert not ipaddress.ip_network(derived_subnet(tag)).overlaps(services)
