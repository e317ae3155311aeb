"""Manifest: the original JSON loads unchanged; YAML keeps comments; bad input is refused."""

from __future__ import annotations

import json
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
