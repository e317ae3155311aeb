"""The container engine's pure parts: repository and container names, registry releases,
image IDs, how a running container's image is named and judged."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_proxy.agent.adapters.engine import (
    RunningImage,
    choose_engine,
    container_refusal,
    image_id_of,
    reference_in,
    release_tag,
    repository_refusal,
)
from ansible_proxy.agent.manifest import parse_manifest
from ansible_proxy.errors import ConfigError

DIGEST = "a" * 64


@pytest.mark.parametrize(
    "name", ["localhost/web", "web", "127.0.0.1:5000/team/web-api", "registry.example/a__b/c.d"]
)
def test_repositories_accepted(name: str) -> None:
    assert repository_refusal(name) is None


@pytest.mark.parametrize(
    "name", ["", "Web", "web:latest", f"web@sha256:{DIGEST}", "../web", "web/", "a b", "-web"]
)
def test_repositories_refused(name: str) -> None:
    assert repository_refusal(name) is not None


def test_a_manifest_entry_with_a_bad_image_is_one_error_naming_it(tmp_path: Path) -> None:
    text = '{"binaries": [{"binaryName": "web", "image": "Web:latest"}]}'
    with pytest.raises(ConfigError, match=r"binaries\[0\]: image 'Web:latest' is not a"):
        parse_manifest(tmp_path / "m.json", text)
    entry = parse_manifest(tmp_path / "m.json", text.replace("Web:latest", "localhost/web"))
    assert entry.binaries[0].image == "localhost/web"


def test_a_registry_release_is_a_one_line_reference(tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    ref.write_text(f"127.0.0.1:5000/web@sha256:{DIGEST}\n")
    assert reference_in(ref) == f"127.0.0.1:5000/web@sha256:{DIGEST}"
    ref.write_text("127.0.0.1:5000/web:latest\n")  # a tag moves: not a release
    assert reference_in(ref) is None
    archive = tmp_path / "archive"
    archive.write_bytes(b"\x00" * 2048)
    assert reference_in(archive) is None


def test_release_tags_and_image_ids() -> None:
    assert release_tag("localhost/web", DIGEST) == f"localhost/web:sha256-{DIGEST}"
    assert image_id_of(f"{DIGEST}\n") == image_id_of(f"sha256:{DIGEST}") == f"sha256:{DIGEST}"


def test_an_unknown_engine_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="expected podman or docker"):
        choose_engine("rkt")


B = "b" * 64
IMAGE_ID = "3bf927d0346c6c2888ad472f0e1b30c713e0d2f8ab3cca2d27566774e52cbac3"


def test_a_container_entry_names_its_container_and_a_bad_one_is_one_error(
    tmp_path: Path,
) -> None:
    text = '{"binaries": [{"serviceName": "web", "binaryName": "web", "image": "localhost/web"}]}'
    entry = parse_manifest(tmp_path / "m.json", text).binaries[0]
    assert entry.container_name == "web"  # the rule: the serviceName
    named = text.replace('"image"', '"container": "web-1.blue", "image"')
    assert parse_manifest(tmp_path / "m.json", named).binaries[0].container_name == "web-1.blue"
    for bad in ('"-web"', '"web/1"', '"a b"', "42", f'"{"w" * 129}"'):
        with pytest.raises(ConfigError, match=r"binaries\[0\]: container .* is not a container"):
            parse_manifest(
                tmp_path / "m.json", text.replace('"image"', f'"container": {bad}, "image"')
            )
    binary = '{"binaries": [{"binaryName": "web", "container": "web"}]}'
    with pytest.raises(ConfigError, match=r"binaries\[0\]: container is only for an entry with an"):
        parse_manifest(tmp_path / "m.json", binary)
    assert container_refusal("web") is None


def test_a_running_image_is_judged_by_its_release_tags_and_named_for_a_person() -> None:
    current = RunningImage("web", IMAGE_ID, (DIGEST,), "localhost/web:v2")
    assert current.refusal(DIGEST) == ""
    assert current.describe(DIGEST) == f"release {DIGEST[:12]} (image 3bf927d0346c)"
    assert current.refusal(B) == (
        f"container web runs localhost/web:v2 (release {DIGEST[:12]}, image 3bf927d0346c), "
        f"not release {B[:12]}"
    )
    docker = RunningImage("web", f"sha256:{IMAGE_ID}", (), "")  # another image: no release tag
    assert (
        docker.refusal(DIGEST)
        == f"container web runs image 3bf927d0346c, not release {DIGEST[:12]}"
    )
    untagged = RunningImage("web", IMAGE_ID, (B,), "")
    assert untagged.describe() == f"release {B[:12]} (image 3bf927d0346c)"
    gone = RunningImage("web")
    assert gone.refusal(DIGEST) == (
        "no container named web is running (the program must run it with --name web)"
    )
