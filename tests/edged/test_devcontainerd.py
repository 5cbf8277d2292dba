"""The private containerd and the locally built images."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from edgecore.edged import localimage
from edgecore.edged.cri import CRIClient
from edgecore.edged.devcontainerd import DevContainerd
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
