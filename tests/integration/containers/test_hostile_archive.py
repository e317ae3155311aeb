"""A release's image archive names only what the agent lets it (issue 25), for real:
podman, supervisord, the bin-manager, the agent's console script.

`podman load` gives an image every name its archive carries, and an archive may hold
several images: a release of `web` could move `localhost/db:current` or plant
`localhost/web:sha256-<another release>`. The agent reads the archive first and refuses
it; it trusts a release tag only when it is the image it recorded when it verified that
release's file, never a tag alone.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.support.containers import (
    ContainerEnv,
    build_image,
    http_answer,
    renamed_docker_archive,
    renamed_oci_archive,
    web_script,
)
from tests.support.image_host import CURRENT, IMAGE, ImageHost

DB = "localhost/db:current"


@pytest.fixture(scope="session")
def db_archive(container_store: ContainerEnv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another bin's image, `localhost/db:v1`."""
    out = tmp_path_factory.mktemp("db") / "db-v1.oci"
    return build_image(container_store, "localhost/db", "v1", web_script("db v1"), out)


def file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tagged(env: ContainerEnv, ref: str) -> bool:
    return env.podman("image", "exists", ref, check=False).returncode == 0


def test_a_hostile_archive_is_refused_and_moves_no_tag(
    host: ImageHost, db_archive: Path, tmp_path: Path
) -> None:
    env = host.podman_env
    v2_sha = file_sha(host.archives["v2"])  # a release to come, whose tag the archives plant
    planted = f"{IMAGE}:sha256-{v2_sha}"
    v4, s1 = host.archives["v4"], host.archives["s1"]
    hostile = [
        (
            renamed_docker_archive(
                env, [(v4, [f"{IMAGE}:2.0"]), (s1, [DB, planted])], tmp_path / "two.tar"
            ),
            "manifest.json lists 2 images: a release is one image",
        ),
        (
            renamed_oci_archive(v4, DB, tmp_path / "db.tar"),
            f"index.json names '{DB}': another repository than {IMAGE} (loading it would "
            "move that tag)",
        ),
        (
            renamed_docker_archive(env, [(s1, [f"{IMAGE}:2.0", planted])], tmp_path / "p.tar"),
            f"manifest.json names '{planted}': a tag only the agent sets (:current, "
            ":sha256-<release>)",
        ),
    ]
    env.podman("load", "--input", str(db_archive))
    env.podman("tag", "localhost/db:v1", DB)
    db_image = env.image_id(DB)
    v1 = host.install("v1")
    pid = host.supervisord.pid("web")
    before = host.entry("web")

    for count, (archive, why) in enumerate(hostile, 1):
        bad = host.bin_manager.publish("web", archive)
        result = host.run()
        assert result.returncode == 1, host.debug(result)
        line = f"web@{bad[:12]}: image archive refused: {why}"
        assert result.stderr.splitlines() == [f"ansible-proxy: web: {line}"], result.stderr
        assert host.log().count("image archive refused") == count, host.log()  # one line
        report = host.last_progress()
        assert (report["targetHash"], report["status"]) == (bad, "failed"), report
        assert report["reason"] == f"image: image archive refused: {why}"
        assert env.image_id(DB) == db_image  # the other bin's tag did not move
        assert not tagged(env, planted)
        assert not tagged(env, f"{IMAGE}:2.0")  # nothing of the archive was loaded
        assert host.current_release() == v1
        assert (host.supervisord.pid("web"), http_answer(host.port)) == (pid, "web v1")
        assert host.entry("web") == before

    v2 = host.install("v2")  # the release whose tag was to be planted
    assert v2 == v2_sha
    assert host.running_image() == host.release_image(v2) == env.image_id(f"{IMAGE}:v2")
    assert env.image_id(DB) == db_image


def test_a_release_tag_the_agent_did_not_verify_is_not_trusted(host: ImageHost) -> None:
    """A `sha256-<release>` tag set by something else than the agent (an older agent's load
    of a hostile archive, a person) on another image: the agent loads the release from its
    verified file and moves the tag back, instead of running what the tag names."""
    env = host.podman_env
    host.install("v1")
    v2 = host.publish("v2")
    env.podman("load", "--input", str(host.archives["v4"]))
    env.podman("tag", f"{IMAGE}:v4", f"{IMAGE}:sha256-{v2}")  # planted before the upgrade

    result = host.run()
    assert result.returncode == 0, host.debug(result)
    host.wait_answer("web v2")
    v2_image = env.image_id(f"{IMAGE}:v2")  # named by v2's own archive
    assert host.running_image() == host.release_image(v2) == v2_image
    assert env.image_id(CURRENT) == v2_image != env.image_id(f"{IMAGE}:v4")
    record = host.store_dir / "web" / f"{v2}.image"
    assert record.read_text() == f"sha256:{v2_image}\n"


def test_a_planted_current_and_release_tag_are_not_adopted(host: ImageHost) -> None:
    """`:current` moved to another image carrying the latest release's tag (what a hostile
    archive loaded by an older agent left): not taken for that release installed."""
    env = host.podman_env
    v2 = host.install("v2")
    v4 = host.publish("v4")
    env.podman("load", "--input", str(host.archives["s1"]))
    env.podman("tag", f"{IMAGE}:s1", CURRENT, f"{IMAGE}:sha256-{v4}")

    result = host.run()
    assert result.returncode == 0, host.debug(result)
    host.wait_answer("web v4")
    v4_image = env.image_id(f"{IMAGE}:v4")
    assert host.running_image() == host.release_image(v4) == env.image_id(CURRENT) == v4_image
    assert "restoring" in host.log()
    entry = host.entry("web")
    assert (entry["version"], entry["previousVersion"]) == (v4, v2)
    assert entry["history"] == {v2: "ok", v4: "ok"}
