"""What an image archive holds, read before the engine loads it (docs/containers.md).

`podman load` and `docker load` give a loaded image every name its archive carries, and
an archive may hold several images with any names: loading one bin's release could move
another bin's `:current`, or plant a release tag. `verified_image` reads the archive's
index.json and manifest.json (an uncompressed tar; bounded reads, nothing extracted),
checks that it holds one image and only names of the bin's repository that the agent
does not set itself, and returns that image's ID: its config digest, checked here.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import tarfile
from pathlib import Path
from typing import IO, Any

from ansible_proxy.errors import DeployError

MAX_MEMBERS = 20_000  # an image of 127 layers saved by docker has about 400
MAX_JSON = 4 * 1024 * 1024  # index.json, manifest.json, an image manifest or config
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"  # read before REF_NAME by podman and docker
IMAGE_MANIFESTS = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
# The agent's own tags: `:current` and `:sha256-<release>` (adapters/engine.py).
RESERVED_TAGS = ("current", "sha256-")
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_COMPRESSED = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ": "xz", b"\x28\xb5\x2f\xfd": "zstd"}


class ArchiveRefused(DeployError):
    """An image archive the agent will not load: it says why in one phrase."""

    def __init__(self, why: str) -> None:
        super().__init__(f"image archive refused: {why}")


def verified_image(path: Path, repository: str) -> str:
    """The ID (`sha256:<hex>`, its config's digest) of the one image the archive at
    `path` holds; ArchiveRefused when it holds another count, names outside
    `repository` or the agent's own tags, or content that does not match its digests."""
    with path.open("rb") as fh:
        head = fh.read(6)
    for magic, kind in _COMPRESSED.items():
        if head.startswith(magic):
            raise ArchiveRefused(
                f"{kind}-compressed: publish the uncompressed tar podman save or docker save wrote"
            )
    try:
        with tarfile.open(path, "r:") as tar:
            found = _images(tar)
    except tarfile.TarError as exc:
        message = f"not a tar file ({exc}): publish the tar podman save or docker save wrote"
        raise ArchiveRefused(message) from None
    if not found:
        raise ArchiveRefused("no index.json or manifest.json: not an image archive")
    image_id = found[0][0]
    if any(other != image_id for other, _, _ in found):
        raise ArchiveRefused("index.json and manifest.json describe different images")
    for _, names, where in found:
        for name in names:
            why = name_refusal(name, repository)
            if why:
                raise ArchiveRefused(f"{where} names {name[:200]!r}: {why}")
    return image_id


def name_refusal(name: str, repository: str) -> str | None:
    """Why loading an image named `name` (a tag the engine would set) may not happen for
    a bin whose image is `repository`; None when the name is the bin's own to give."""
    if "@" in name:
        return "a digest, not a tag"
    repo, tag = name, "latest"
    if ":" in name.rsplit("/", 1)[-1]:  # a colon before the last slash is a port
        repo, tag = name.rsplit(":", 1)
    if repo != repository:
        return f"another repository than {repository} (loading it would move that tag)"
    if _TAG_RE.fullmatch(tag) is None:
        return "not a tag"
    if tag == RESERVED_TAGS[0] or tag.startswith(RESERVED_TAGS[1]):
        return "a tag only the agent sets (:current, :sha256-<release>)"
    return None


def _images(tar: tarfile.TarFile) -> list[tuple[str, list[str], str]]:
    """(image ID, names, where) as index.json and manifest.json each say: an engine may
    read either (podman tries the OCI layout first, then the docker archive)."""
    members = _members(tar)
    found = []
    if "index.json" in members:
        found.append((*_oci_image(tar, members), "index.json"))
    if "manifest.json" in members:
        found.append((*_docker_image(tar, members), "manifest.json"))
    return found


def _members(tar: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    """Every member by its normalised path; a path twice, outside the archive, or more
    than MAX_MEMBERS members is refused (an engine could read another copy than we do)."""
    members: dict[str, tarfile.TarInfo] = {}
    try:
        while (info := tar.next()) is not None:
            if len(members) >= MAX_MEMBERS:
                raise ArchiveRefused(f"more than {MAX_MEMBERS} members")
            name = posixpath.normpath(info.name)
            if name.startswith("/") or name == ".." or name.startswith("../"):
                raise ArchiveRefused(f"member {info.name[:200]!r} is outside the archive")
            if name in members and not (info.isdir() and members[name].isdir()):
                raise ArchiveRefused(f"member {name[:200]!r} appears twice")
            members[name] = info
    except tarfile.TarError as exc:
        raise ArchiveRefused(f"a damaged tar ({exc})") from None
    return members


def _oci_image(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo]) -> tuple[str, list[str]]:
    """An OCI layout's one image: (its ID, the names podman or docker would give it)."""
    index = _json(tar, members, "index.json")
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list) or len(manifests) != 1:
        count = len(manifests) if isinstance(manifests, list) else 0
        raise ArchiveRefused(f"index.json lists {count} images: a release is one image")
    descriptor = manifests[0]
    if not isinstance(descriptor, dict) or descriptor.get("mediaType") not in IMAGE_MANIFESTS:
        kind = descriptor.get("mediaType") if isinstance(descriptor, dict) else None
        raise ArchiveRefused(
            f"index.json lists a {str(kind)[:100]}, not one image's manifest (save one "
            "platform's image)"
        )
    try:
        manifest = json.loads(_blob(tar, members, descriptor.get("digest"), "the manifest"))
    except ValueError:
        raise ArchiveRefused("the image manifest is not JSON") from None
    config = manifest.get("config") if isinstance(manifest, dict) else None
    if not isinstance(config, dict) or manifest.get("schemaVersion") != 2:
        raise ArchiveRefused("the image manifest is not schema 2 with a config")
    digest = config.get("digest")
    _blob(tar, members, digest, "the image config")
    annotations = descriptor.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise ArchiveRefused("index.json's annotations are not a mapping")
    containerd, ref = annotations.get(CONTAINERD_NAME), annotations.get(REF_NAME)
    names = [containerd] if containerd else []
    # A bare tag in ref.name names nothing once io.containerd.image.name is there; alone,
    # podman makes it a name (`v1` → localhost/v1:latest), refused below.
    if ref and not (containerd and isinstance(ref, str) and _TAG_RE.fullmatch(ref)):
        names.append(ref)
    return str(digest), _strings(names, "index.json's annotations")


def _docker_image(
    tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo]
) -> tuple[str, list[str]]:
    """A docker archive's one image: (its ID, its RepoTags)."""
    entries = _json(tar, members, "manifest.json")
    if not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], dict):
        count = len(entries) if isinstance(entries, list) else 0
        raise ArchiveRefused(f"manifest.json lists {count} images: a release is one image")
    config = entries[0].get("Config")
    if not isinstance(config, str):
        raise ArchiveRefused("manifest.json names no Config")
    data = _read(tar, members, posixpath.normpath(config), "the image config")
    image_id = f"sha256:{hashlib.sha256(data).hexdigest()}"
    return image_id, _strings(entries[0].get("RepoTags") or [], "manifest.json's RepoTags")


def _blob(
    tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], digest: object, what: str
) -> bytes:
    """The OCI blob `digest` names, checked against it."""
    if not isinstance(digest, str) or _DIGEST_RE.fullmatch(digest) is None:
        raise ArchiveRefused(f"{what} has no sha256 digest")
    hexdigest = digest.removeprefix("sha256:")
    data = _read(tar, members, f"blobs/sha256/{hexdigest}", what)
    if hashlib.sha256(data).hexdigest() != hexdigest:
        raise ArchiveRefused(f"{what} does not match its digest {hexdigest[:12]}")
    return data


def _json(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: str) -> Any:
    try:
        return json.loads(_read(tar, members, name, name))
    except ValueError:
        raise ArchiveRefused(f"{name} is not JSON") from None


def _read(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: str, what: str) -> bytes:
    """A regular member's bytes, at most MAX_JSON: a link could point the engine elsewhere."""
    info = members.get(name)
    if info is None or not info.isreg():
        raise ArchiveRefused(f"{what} ({name[:200]}) is not a file in the archive")
    if info.size > MAX_JSON:
        raise ArchiveRefused(f"{what} ({name[:200]}) is {info.size} bytes, over {MAX_JSON}")
    fh: IO[bytes] | None = tar.extractfile(info)
    if fh is None:
        raise ArchiveRefused(f"{what} ({name[:200]}) is not a file in the archive")
    with fh:
        return fh.read(MAX_JSON + 1)


def _strings(values: object, what: str) -> list[str]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ArchiveRefused(f"{what} are not names")
    return list(values)
