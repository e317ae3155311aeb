"""Manifest: the original JSON loads unchanged; YAML keeps comments; bad input is refused."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ansible_proxy.agent.manifest import load_manifest
from ansible_proxy.errors import ConfigError

A, B = "a" * 64, "b" * 64
ORIGINAL = {
    "binaries": [
        {"serviceName": "manager", "binaryName": "manager", "version": "",
         "previousVersion": "", "port": 8080},
    ],
    "nodeInfo": {"cpuArch": "", "osRelease": "", "nodeName": "", "binProxyVersion": ""},
}  # fmt: skip


def test_original_json_round_trips_and_keeps_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    doc = json.loads(json.dumps(ORIGINAL))
    doc["binaries"][0]["owner"] = "team-a"  # operators' own keys survive
    path.write_text(json.dumps(doc))
    manifest = load_manifest(path)
    entry = manifest.binaries[0]
    assert (entry.service_name, entry.binary_name, entry.port, entry.version) == (
        "manager", "manager", 8080, ""
    )  # fmt: skip
    manifest.update("manager", version=A, history={A: "ok"}, upgrade_path={A: ""})
    assert manifest.set_node_info(
        {"cpuArch": "x86_64", "osRelease": "Debian", "nodeName": "n", "binProxyVersion": "1"}
    )
    manifest.save()
    again = json.loads(path.read_text())
    assert list(again["binaries"][0]) == [
        "serviceName", "binaryName", "version", "previousVersion", "port", "owner",
        "history", "upgradePath",
    ]  # fmt: skip
    assert again["binaries"][0]["history"] == {A: "ok"}
    assert load_manifest(path).get("manager").version == A
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temp file left


def test_yaml_keeps_comments_order_and_quotes(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "# top comment\n"
        "binaries:\n"
        "  - binaryName: web   # inline\n"
        "    serviceName: web\n"
        "    version: ''\n"
        "    history:\n"
        f"      {A}: ok\n"
    )
    manifest = load_manifest(path)
    manifest.update("web", version=B, previous_version=A, history={B: "ok"})
    manifest.save()
    text = path.read_text()
    assert text.startswith("# top comment\nbinaries:\n  - binaryName: web   # inline\n")
    assert f"      {A}: ok\n      {B}: ok\n" in text
    assert load_manifest(path).get("web").previous_version == A


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ('{"binaries": {}}', "`binaries` list"),
        ('{"binaries": [{"binaryName": "../x"}]}', "not a valid name"),
        ('{"binaries": [{"binaryName": "a"}, {"binaryName": "a"}]}', "listed twice"),
        ('{"binaries": [{"binaryName": "a", "version": "v1"}]}', "not a sha256"),
        ('{"binaries": [{"binaryName": "a", "port": "80"}]}', "not a TCP port"),
        ('{"binaries": [{"binaryName": "a", "history": {"x": "ok"}}]}', "not a sha256"),
        (json.dumps({"binaries": [{"binaryName": "a", "history": {A: "maybe"}}]}), "history"),
    ],
)
def test_bad_manifest_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "m.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_manifest(path)
    assert path.read_text() == text


def test_missing_manifest_and_wrong_extension(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_manifest(tmp_path / "none.json")
    (tmp_path / "m.txt").write_text("{}")
    with pytest.raises(ConfigError, match=r"\.json, \.yaml or \.yml"):
        load_manifest(tmp_path / "m.txt")


@pytest.mark.parametrize("name", ["app\n", "app\r", "app\nother", "\napp"])
def test_a_binary_name_with_a_line_break_is_refused_and_named(tmp_path: Path, name: str) -> None:
    for path, text in (
        (tmp_path / "m.json", json.dumps({"binaries": [{"binaryName": name}]})),
        (tmp_path / "m.yaml", f"binaries:\n  - binaryName: {json.dumps(name)}\n"),
    ):
        path.write_text(text)
        with pytest.raises(ConfigError) as caught:
            load_manifest(path)
        assert str(caught.value) == (
            f"manifest {path}: binaries[0]: binaryName {name!r} is not a valid name [A-Za-z0-9._-]"
        )


def test_a_version_with_a_trailing_newline_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"binaries": [{"binaryName": "app", "version": A + "\n"}]}))
    with pytest.raises(ConfigError, match=r"version .* is not a sha256"):
        load_manifest(path)


def _saved_manifest(path: Path) -> None:
    path.write_text(json.dumps({"binaries": [{"binaryName": "app", "version": ""}]}))


def test_save_through_a_symlink_writes_the_target_and_keeps_the_link(tmp_path: Path) -> None:
    checkout, etc = tmp_path / "checkout", tmp_path / "etc"
    checkout.mkdir()
    etc.mkdir()
    target = checkout / "bin-manifests.json"
    _saved_manifest(target)
    target.chmod(0o640)
    link = etc / "bin-manifests.json"
    link.symlink_to("../checkout/bin-manifests.json")
    manifest = load_manifest(link)
    manifest.update("app", version=A, history={A: "ok"})
    manifest.save()
    assert link.is_symlink()
    assert str(link.readlink()) == "../checkout/bin-manifests.json"
    assert json.loads(target.read_text())["binaries"][0]["version"] == A
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in checkout.iterdir()) == ["bin-manifests.json"]
    assert sorted(p.name for p in etc.iterdir()) == ["bin-manifests.json"]
    # a later edit of the real file (a config-management run) is what the agent reads
    _saved_manifest(target)
    assert load_manifest(link).get("app").version == ""


def test_save_through_a_dangling_symlink_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    _saved_manifest(path)
    manifest = load_manifest(path)
    path.unlink()
    path.symlink_to(tmp_path / "gone" / "m.json")
    with pytest.raises(ConfigError) as caught:
        manifest.save()
    assert str(caught.value).startswith(f"manifest {path}: cannot write: symlink to ")
    assert "No such file or directory" in str(caught.value)
    assert path.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]


@contextlib.contextmanager
def read_only_tmpfs(directory: Path) -> Iterator[Path]:
    """A tmpfs at `directory`, made read-only once the caller has filled it."""
    directory.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(directory)],
        capture_output=True,
        check=False,
    )
    # The tests run as root (as the agent does): a failed mount is a broken setup, not a skip.
    assert mounted.returncode == 0, f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}"
    try:
        yield directory
    finally:
        subprocess.run(["umount", str(directory)], check=True)


def _remount_read_only(directory: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(directory)], check=True)


@pytest.mark.parametrize("through_link", [False, True])
def test_save_into_a_read_only_directory_is_a_config_error_and_changes_nothing(
    tmp_path: Path, through_link: bool
) -> None:
    with read_only_tmpfs(tmp_path / "ro") as ro:
        target = ro / "m.json"
        _saved_manifest(target)
        path = target
        if through_link:
            path = tmp_path / "link.json"
            path.symlink_to(target)
        manifest = load_manifest(path)
        manifest.update("app", version=A)
        before = target.read_bytes()
        _remount_read_only(ro)
        with pytest.raises(ConfigError) as caught:
            manifest.save()
        assert str(caught.value) == f"manifest {path}: cannot write: Read-only file system"
        assert target.read_bytes() == before
        assert [p.name for p in ro.iterdir()] == ["m.json"]
        assert path.is_symlink() is through_link


INFO = {"cpuArch": "x86_64", "osRelease": "Debian", "nodeName": "n", "binProxyVersion": "1"}


def test_node_labels_live_in_node_info_only_when_set(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps(ORIGINAL))  # an older agent's manifest: no labels
    manifest = load_manifest(path)
    assert manifest.node_info() == {k: "" for k in INFO}
    assert manifest.set_node_info(INFO)
    manifest.save()
    assert "labels" not in json.loads(path.read_text())["nodeInfo"]  # nothing new without
    assert not load_manifest(path).set_node_info(INFO)

    labelled = {**INFO, "labels": {"zone": "a", "tier": "canary"}}
    manifest = load_manifest(path)
    assert manifest.set_node_info(labelled)
    manifest.save()
    assert json.loads(path.read_text())["nodeInfo"] == {
        **INFO, "labels": {"tier": "canary", "zone": "a"}
    }  # fmt: skip
    again = load_manifest(path)
    assert again.node_info() == labelled  # what the keepalive sends: compared as sent
    assert not again.set_node_info(labelled)
    assert again.set_node_info({**INFO, "labels": {"tier": "stable", "zone": "a"}})
    assert again.set_node_info(INFO)  # NODE_LABELS emptied: the labels go
    again.save()
    assert "labels" not in json.loads(path.read_text())["nodeInfo"]


def test_node_labels_in_a_yaml_manifest_keep_its_comments(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("# mine\nbinaries:\n  - binaryName: web   # inline\n")
    manifest = load_manifest(path)
    assert manifest.set_node_info({**INFO, "labels": {"tier": "canary"}})
    manifest.save()
    text = path.read_text()
    assert text.startswith("# mine\nbinaries:\n  - binaryName: web   # inline\n")
    assert "  labels:\n    tier: canary\n" in text
    assert load_manifest(path).node_info()["labels"] == {"tier": "canary"}


def test_the_inspectors_keys_are_read_and_kept_on_save(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "binaries:\n"
        "  - serviceName: hello  # the operator's comment\n"
        "    binaryName: hello\n"
        "    prometheusQuery: 'up{job=\"{service}\"} == 0'\n"
        "    healthUrl: http://{host}:8080/healthz\n"
        "  - binaryName: web\n"
    )
    manifest = load_manifest(path)
    hello, web = manifest.binaries
    assert (hello.prometheus_query, hello.health_url) == (
        'up{job="{service}"} == 0',
        "http://{host}:8080/healthz",
    )
    assert (web.prometheus_query, web.health_url) == ("", "")
    manifest.update("hello", version=A, history={A: "ok"})
    manifest.save()
    text = path.read_text()
    assert "prometheusQuery: 'up{job=\"{service}\"} == 0'" in text
    assert "healthUrl: http://{host}:8080/healthz" in text
    assert "# the operator's comment" in text
    assert load_manifest(path).binaries[0] == manifest.binaries[0]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("prometheusQuery", '""', "prometheusQuery must be a non-empty string"),
        ("prometheusQuery", "'  '", "prometheusQuery must be a non-empty string"),
        ("prometheusQuery", "42", "prometheusQuery must be a non-empty string"),
        ("prometheusQuery", "[a]", "prometheusQuery must be a non-empty string"),
        ("healthUrl", '""', "healthUrl '' is not an http:// or https:// URL"),
        ("healthUrl", "8080", "healthUrl 8080 is not an http:// or https:// URL"),
        ("healthUrl", "ftp://host/x", "healthUrl 'ftp://host/x' is not an http://"),
        ("healthUrl", "/healthz", "healthUrl '/healthz' is not an http://"),
        ("healthUrl", "http:///healthz", "healthUrl 'http:///healthz' is not an http://"),
        ("healthUrl", "'http://h:99999/'", "healthUrl 'http://h:99999/' is not"),
        ("healthUrl", "'http://h /x'", "healthUrl 'http://h /x' is not"),
    ],
)
def test_a_bad_inspector_key_is_one_clear_error_and_changes_nothing(
    tmp_path: Path, key: str, value: str, message: str
) -> None:
    path = tmp_path / "m.yaml"
    text = f"binaries:\n  - binaryName: ok\n  - binaryName: hello\n    {key}: {value}\n"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_manifest(path)
    assert str(caught.value).startswith(f"manifest {path}: binaries[1]: {message}")
    assert path.read_text() == text
