"""Manifests as operators write them: the original design's JSON, and YAML with comments."""

from __future__ import annotations

import json
from pathlib import Path

from ruamel.yaml import YAML

from tests.support.agent import Agent, program
from tests.support.procs import free_port
from tests.support.server import BinManager
from tests.support.supervisor import Supervisord

YAML_MANIFEST = """\
# bin-manifests for host-001 - the operator's notes must survive
binaries:
  # the API server
  - serviceName: api   # supervisor program
    binaryName: api
    port: {port}
    version: ""
    previousVersion: ""
nodeInfo:
  cpuArch: ""
  osRelease: ""
  nodeName: ""
  binProxyVersion: ""
"""


def test_yaml_manifest_keeps_comments_and_order(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    port = free_port()
    sha = bin_manager.publish("api", program("1", port=port))
    manifest = agent.root / "etc" / "bin-manifests.yaml"
    manifest.write_text(YAML_MANIFEST.format(port=port))
    supervisord.add_program("api", agent.binary("api"))
    result = agent.run(BIN_MANIFESTS=str(manifest))
    assert result.returncode == 0, agent.debug(result)
    text = manifest.read_text()
    for comment in ("# bin-manifests for host-001", "# the API server", "# supervisor program"):
        assert comment in text
    doc = YAML(typ="safe").load(text)
    entry = doc["binaries"][0]
    assert list(entry)[:5] == ["serviceName", "binaryName", "port", "version", "previousVersion"]
    assert entry["version"] == sha
    assert entry["history"] == {sha: "ok"}
    assert doc["nodeInfo"]["nodeName"] == "host-001"


ORIGINAL_DESIGN_JSON = {
    "binaries": [
        {
            "serviceName": "manager",
            "binaryName": "manager",
            "version": "",
            "previousVersion": "",
            "port": 0,
        },
        {
            "serviceName": "your-service",
            "binaryName": "your-service-name",
            "version": "",
            "previousVersion": "",
            "port": 0,
        },
    ],
    "nodeInfo": {"cpuArch": "", "osRelease": "", "nodeName": "", "binProxyVersion": ""},
}


def test_original_design_json_manifest_works_as_is(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    ports = [free_port(), free_port()]
    doc = json.loads(json.dumps(ORIGINAL_DESIGN_JSON))
    for entry, port in zip(doc["binaries"], ports, strict=True):
        entry["port"] = port
    agent.manifest_path.write_text(json.dumps(doc, indent=2))
    shas = {
        "manager": bin_manager.publish("manager", program("m1", port=ports[0])),
        "your-service-name": bin_manager.publish("your-service-name", program("s1", port=ports[1])),
    }
    supervisord.add_program("manager", agent.binary("manager"))
    supervisord.add_program("your-service", agent.binary("your-service-name"))
    result = agent.run()
    assert result.returncode == 0, agent.debug(result)
    after = agent.manifest()
    for entry in after["binaries"]:
        assert entry["version"] == shas[entry["binaryName"]]
        assert agent.installed_sha(entry["binaryName"]) == entry["version"]
    info = after["nodeInfo"]
    assert info["cpuArch"]
    assert info["osRelease"]
    assert info["binProxyVersion"]
    assert list(after["binaries"][0])[:5] == list(ORIGINAL_DESIGN_JSON["binaries"][0])  # type: ignore[index]


def test_unreadable_manifest_is_a_config_error(tmp_path: Path) -> None:
    host = Agent(tmp_path / "host", "http://127.0.0.1:9/api/v1", "unix:///nonexistent.sock")
    host.manifest_path.write_text('{"binaries": [{"binaryName": "../etc/passwd"}]}')
    result = host.run()
    assert result.returncode == 2
    assert "binaryName '../etc/passwd' is not a valid name" in result.stderr
    assert result.stderr.count("\n") == 1
    assert list(host.bin_dir.iterdir()) == []
    assert not host.store_dir.exists()
    assert not host.lock_dir.exists()
