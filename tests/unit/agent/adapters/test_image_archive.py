"""What an image archive may name and hold before the engine loads it: archives written
here as `podman save` and `docker save` write them, then changed the way a hostile
publisher would (several images, another bin's tags, the agent's own tags, links)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest

from ansible_proxy.agent.adapters import image_archive
from ansible_proxy.agent.adapters.image_archive import (
    ArchiveRefused,
    name_refusal,
    verified_image,
)

REPO = "localhost/web"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
RELEASE = "ab" * 32


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def config(tag: str) -> bytes:
    return json.dumps({"architecture": "amd64", "config": {"Labels": {"v": tag}}}).encode()


def oci_manifest(cfg: bytes) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"digest": f"sha256:{sha(cfg)}", "size": len(cfg)},
        "layers": [],
    }
    return json.dumps(doc).encode()


def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_oci(
    path: Path, annotations: list[dict[str, str]], extra: dict[str, bytes] | None = None
) -> str:
    """An OCI archive of one image per `annotations` item; the first image's ID."""
    ids, descriptors, blobs = [], [], {}
    for n, notes in enumerate(annotations):
        cfg = config(f"v{n}")
        manifest = oci_manifest(cfg)
        blobs[sha(cfg)], blobs[sha(manifest)] = cfg, manifest
        descriptors.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": f"sha256:{sha(manifest)}",
                "size": len(manifest),
                "annotations": notes,
            }
        )
        ids.append(f"sha256:{sha(cfg)}")
    with tarfile.open(path, "w") as tar:
        for digest, data in blobs.items():
            add(tar, f"blobs/sha256/{digest}", data)
        add(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        add(tar, "index.json", json.dumps({"schemaVersion": 2, "manifests": descriptors}).encode())
        for name, data in (extra or {}).items():
            add(tar, name, data)
    return ids[0]


def write_docker(
    path: Path, repo_tags: list[list[str]], index: dict[str, Any] | None = None
) -> str:
    """A docker archive (`docker save`) of one image per `repo_tags` item; the first ID."""
    entries, ids = [], []
    with tarfile.open(path, "w") as tar:
        for n, tags in enumerate(repo_tags):
            cfg = config(f"v{n}")
            add(tar, f"{sha(cfg)}.json", cfg)
            entries.append({"Config": f"{sha(cfg)}.json", "RepoTags": tags, "Layers": []})
            ids.append(f"sha256:{sha(cfg)}")
        add(tar, "manifest.json", json.dumps(entries).encode())
        if index is not None:
            add(tar, "index.json", json.dumps(index).encode())
    return ids[0]


def test_a_podman_oci_archive_of_this_repository_is_its_config_digest(tmp_path: Path) -> None:
    path = tmp_path / "web.tar"
    image_id = write_oci(path, [{image_archive.REF_NAME: f"{REPO}:2.4.1"}])
    assert verified_image(path, REPO) == image_id
    unnamed = tmp_path / "unnamed.tar"  # loaded by its ID alone: no name at all
    assert write_oci(unnamed, [{}]) == image_id
    assert verified_image(unnamed, REPO) == image_id


def test_a_docker_archive_is_the_sha256_of_its_config(tmp_path: Path) -> None:
    path = tmp_path / "web.tar"
    image_id = write_docker(path, [[f"{REPO}:2.4.1", f"{REPO}:latest"]])
    assert verified_image(path, REPO) == image_id
    write_docker(path, [[]])
    assert verified_image(path, REPO).startswith("sha256:")


def test_a_docker_25_archive_with_both_layouts_names_its_image_once(tmp_path: Path) -> None:
    """docker save (25 and later) writes index.json and manifest.json; the index's ref.name
    is then a bare tag, which names nothing beside io.containerd.image.name."""
    oci = tmp_path / "oci.tar"
    write_oci(oci, [{image_archive.CONTAINERD_NAME: f"{REPO}:v1", image_archive.REF_NAME: "v1"}])
    with tarfile.open(oci) as src:
        members = {m.name: src.extractfile(m).read() for m in src if m.isfile()}  # type: ignore[union-attr]
    index = json.loads(members.pop("index.json"))
    manifest = json.loads(next(v for v in members.values() if b"schemaVersion" in v))
    cfg_hex = manifest["config"]["digest"].removeprefix("sha256:")
    both = tmp_path / "both.tar"
    with tarfile.open(both, "w") as tar:
        for name, data in members.items():
            add(tar, name, data)
        add(tar, "index.json", json.dumps(index).encode())
        entry = {"Config": f"blobs/sha256/{cfg_hex}", "RepoTags": [f"{REPO}:v1"], "Layers": []}
        add(tar, "manifest.json", json.dumps([entry]).encode())
    assert verified_image(both, REPO) == f"sha256:{cfg_hex}"


@pytest.mark.parametrize(
    ("tags", "why"),
    [
        (
            [["localhost/db:current"]],
            "manifest.json names 'localhost/db:current': another repository than localhost/web",
        ),
        ([[f"{REPO}:sha256-{RELEASE}"]], "a tag only the agent sets"),
        ([[f"{REPO}:current"]], "a tag only the agent sets"),
        ([[f"{REPO}:v1", "web:v1"]], "names 'web:v1': another repository"),
        ([[f"{REPO}@sha256:{RELEASE}"]], "a digest, not a tag"),
        ([[f"{REPO}:v1"], ["localhost/db:current"]], "manifest.json lists 2 images"),
    ],
)
def test_a_docker_archive_naming_what_is_not_its_own_is_refused(
    tmp_path: Path, tags: list[list[str]], why: str
) -> None:
    path = tmp_path / "hostile.tar"
    write_docker(path, tags)
    with pytest.raises(ArchiveRefused, match="^image archive refused: .*" + re.escape(why)):
        verified_image(path, REPO)


@pytest.mark.parametrize(
    ("annotations", "why"),
    [
        ([{image_archive.REF_NAME: "localhost/db:current"}], "another repository than"),
        ([{image_archive.CONTAINERD_NAME: "localhost/db:current"}], "another repository than"),
        # A bare tag alone: podman makes it localhost/v1:latest.
        ([{image_archive.REF_NAME: "v1"}], "names 'v1': another repository"),
        (
            [{image_archive.CONTAINERD_NAME: f"{REPO}:v1", image_archive.REF_NAME: "db:x"}],
            "names 'db:x'",
        ),
        ([{image_archive.REF_NAME: f"{REPO}:sha256-{RELEASE}"}], "a tag only the agent sets"),
        ([{}, {}], "index.json lists 2 images"),
    ],
)
def test_an_oci_archive_naming_what_is_not_its_own_is_refused(
    tmp_path: Path, annotations: list[dict[str, str]], why: str
) -> None:
    path = tmp_path / "hostile.tar"
    write_oci(path, annotations)
    with pytest.raises(ArchiveRefused, match=re.escape(why)):
        verified_image(path, REPO)


def test_index_and_manifest_json_must_describe_the_same_image(tmp_path: Path) -> None:
    path = tmp_path / "two.tar"
    write_docker(path, [[f"{REPO}:v1"]], index={"schemaVersion": 2, "manifests": []})
    with pytest.raises(ArchiveRefused, match=r"index\.json lists 0 images"):
        verified_image(path, REPO)
    other = config("other")
    manifest = oci_manifest(other)
    descriptor = {"mediaType": OCI_MANIFEST, "digest": f"sha256:{sha(manifest)}"}
    write_docker(path, [[f"{REPO}:v1"]], index={"manifests": [descriptor]})
    with tarfile.open(path, "a") as tar:
        add(tar, f"blobs/sha256/{sha(manifest)}", manifest)
        add(tar, f"blobs/sha256/{sha(other)}", other)
    with pytest.raises(ArchiveRefused, match="describe different images"):
        verified_image(path, REPO)


def test_content_that_does_not_match_its_digest_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "web.tar"
    write_oci(path, [{}])
    with tarfile.open(path) as src:
        members = [(m, src.extractfile(m).read()) for m in src]  # type: ignore[union-attr]
    with tarfile.open(path, "w") as tar:
        for info, data in members:
            if info.name.startswith("blobs/") and b"architecture" in data:
                data = data.replace(b"amd64", b"arm64")
            add(tar, info.name, data)
    with pytest.raises(ArchiveRefused, match="the image config does not match its digest"):
        verified_image(path, REPO)


def test_a_second_copy_of_a_member_or_a_link_in_its_place_is_refused(tmp_path: Path) -> None:
    """An engine might read the other copy, or follow the link, and see other names."""
    twice = tmp_path / "twice.tar"
    write_oci(twice, [{}], extra={"index.json": b"{}"})
    with pytest.raises(ArchiveRefused, match=r"member 'index\.json' appears twice"):
        verified_image(twice, REPO)

    linked = tmp_path / "linked.tar"
    write_docker(linked, [[f"{REPO}:v1"]])
    with tarfile.open(linked) as src:
        members = [(m, src.extractfile(m).read()) for m in src]  # type: ignore[union-attr]
    with tarfile.open(linked, "w") as tar:
        for info, data in members:
            if info.name == "manifest.json":
                add(tar, "real.json", data)
                link = tarfile.TarInfo("manifest.json")
                link.type, link.linkname = tarfile.SYMTYPE, "real.json"
                tar.addfile(link)
            else:
                add(tar, info.name, data)
    with pytest.raises(ArchiveRefused, match=r"manifest.json \(manifest.json\) is not a file"):
        verified_image(linked, REPO)

    outside = tmp_path / "outside.tar"
    write_oci(outside, [{}], extra={"../etc/x": b""})
    with pytest.raises(ArchiveRefused, match="outside the archive"):
        verified_image(outside, REPO)


def test_sizes_and_counts_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "web.tar"
    write_oci(path, [{}], extra={f"pad/{n}": b"" for n in range(20)})
    monkeypatch.setattr(image_archive, "MAX_MEMBERS", 10)
    with pytest.raises(ArchiveRefused, match="more than 10 members"):
        verified_image(path, REPO)
    monkeypatch.setattr(image_archive, "MAX_MEMBERS", 100)
    monkeypatch.setattr(image_archive, "MAX_JSON", 64)
    with pytest.raises(ArchiveRefused, match=r"index.json \(index.json\) is \d+ bytes, over 64"):
        verified_image(path, REPO)


def test_what_is_not_an_uncompressed_tar_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "web.tar"
    write_oci(path, [{}])
    packed = tmp_path / "web.tar.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(ArchiveRefused, match="gzip-compressed: publish the uncompressed tar"):
        verified_image(packed, REPO)
    noise = tmp_path / "noise"
    noise.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(ArchiveRefused, match=r"not a tar file \(.*\): publish the tar"):
        verified_image(noise, REPO)
    empty = tmp_path / "empty.tar"
    with tarfile.open(empty, "w") as tar:
        add(tar, "README", b"hello")
    with pytest.raises(ArchiveRefused, match=r"no index\.json or manifest\.json"):
        verified_image(empty, REPO)


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        (f"{REPO}:2.4.1", True),
        (REPO, True),  # :latest
        ("127.0.0.1:5000/web:v1", False),
        (f"{REPO}:current", False),
        (f"{REPO}:sha256-{RELEASE}", False),
        (f"{REPO}:bad tag", False),
        (f"{REPO}x:v1", False),
        ("localhost/web/x:v1", False),
    ],
)
def test_name_refusal(name: str, ok: bool) -> None:
    assert (name_refusal(name, REPO) is None) == ok
    assert name_refusal("127.0.0.1:5000/web:v1", "127.0.0.1:5000/web") is None
