"""The Ansible role deploys the agent to namespace hosts over SSH; the agent then works there."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

from tests.integration.packaging.rotation import config_for, logrotate
from tests.support.agent import program, sha256
from tests.support.cluster import SERVICE_PORT, VENV_BIN, ClusterLab, LabHost, running_lab
from tests.support.procs import wait_until
from tests.support.py39 import build_onefile

ROOT = Path(__file__).resolve().parents[3]
ROLES = ROOT / "packaging" / "ansible" / "roles"


def _host_vars(lab: ClusterLab, host: LabHost) -> dict[str, object]:
    etc = host.root / "etc"
    return {
        "ansible_proxy_install": False,
        "ansible_proxy_executable": str(VENV_BIN / "ansible-proxy"),
        "ansible_proxy_link": "",
        "ansible_proxy_config_path": str(etc / "ansible-proxy" / "config"),
        "ansible_proxy_manifest_path": str(etc / "ansible-proxy" / "bin-manifests.json"),
        "ansible_proxy_cron_file": str(etc / "cron.d" / "ansible-proxy"),
        "ansible_proxy_cron_mailto": "ops@example.org",
        "ansible_proxy_logrotate_file": str(etc / "logrotate.d" / "ansible-proxy"),
        "ansible_proxy_config": {
            # the bin-manager listens on the test machine's loopback: the namespace hosts
            # reach its API (and its downloads) through the cluster's nginx on the bridge
            "BIN_MANAGER_API": f"{lab.cache_url}/api/v1",
            "ALLOW_INSECURE_HTTP": 1,  # plain HTTP on the lab's own bridge
            "BIN_DIR": str(host.app_dir / "bin"),
            "STORE_DIR": str(host.root / "store"),
            "LOCK_DIR": str(host.root / "locks"),
            "LOG_FILE": str(host.root / "ansible-proxy.log"),
            "SUPERVISOR_URL": f"unix://{host.sock}",
            "NODE_NAME": f"node-{host.name}",
            "WATCH_SECONDS": 1,
            # the agent enrols on its first tick (the lab's server requires node credentials)
            "ENROLMENT_TOKEN": lab.bin_manager.enrolment_token,
        },
        "ansible_proxy_binaries": [
            {"serviceName": "hello", "binaryName": "hello", "port": SERVICE_PORT}
        ],
    }


def _playbook(
    lab: ClusterLab, tmp_path: Path, **overrides: Callable[[LabHost], object]
) -> subprocess.CompletedProcess[str]:
    """The role on every lab host; `overrides`: variable → its value for a host."""
    (tmp_path / "host_vars").mkdir(exist_ok=True)
    for host in lab.hosts:
        variables = {**_host_vars(lab, host), **{k: f(host) for k, f in overrides.items()}}
        (tmp_path / "host_vars" / f"{host.name}.json").write_text(json.dumps(variables))
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(lab.inventory.read_text())
    playbook = tmp_path / "site.yml"
    playbook.write_text(
        textwrap.dedent("""\
        - hosts: cluster
          gather_facts: false
          roles: [ansible_proxy_agent]
        """)
    )
    env = {**lab.env(), "ANSIBLE_ROLES_PATH": str(ROLES), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), str(playbook)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def _cron_command(cron_file: Path, subcommand: str) -> str:
    """The command of the cron line running `ansible-proxy <subcommand>`, as cron runs it."""
    for line in cron_file.read_text().splitlines():
        fields = line.split(None, 6)
        if len(fields) == 7 and fields[5] == "root" and f" {subcommand} " in fields[6]:
            return fields[6]
    raise AssertionError(f"no `{subcommand}` line in {cron_file}:\n{cron_file.read_text()}")


def _wait_running(host: LabHost) -> None:
    def running() -> bool:
        return bool(host.supervisor("getProcessInfo", "hello")["statename"] == "RUNNING")

    wait_until(running, 20, f"hello RUNNING on {host.name}")


def _supervise_hello(host: LabHost) -> None:
    """A cron.d directory (as on any Debian host) and the hello program in its supervisord."""
    (host.root / "etc" / "cron.d").mkdir(parents=True)
    (host.root / "conf.d" / "hello.conf").write_text(
        f"[program:hello]\ncommand={host.app_dir}/bin/hello\nautostart=true\n"
        f"startsecs=1\nstartretries=1\nstdout_logfile={host.root}/hello.log\n"
    )
    host.supervisor("reloadConfig")
    host.supervisor("addProcessGroup", "hello")


def _cron_tick(host: LabHost, command: str) -> str:
    """Run cron's `run` line inside the host's network namespace, as cron would; its log."""
    tick = subprocess.run(
        ["ip", "netns", "exec", host.netns, "sh", "-c", command],
        env={"PATH": "/usr/bin:/bin", "HOME": str(host.root), "SHELL": "/bin/sh"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    log = (host.root / "ansible-proxy.log").read_text()
    assert tick.returncode == 0, f"{shlex.join(tick.args)}\n{tick.stderr}\n{log}"
    return log


def _recap_changed(output: str) -> list[int]:
    return [int(n) for n in re.findall(r"changed=(\d+)", output)]


def test_role_configures_hosts_idempotently_and_the_agent_then_deploys(tmp_path: Path) -> None:
    with running_lab(tmp_path / "lab", ["x86_64", "x86_64"]) as lab:
        released = program("1", port=SERVICE_PORT)
        sha = lab.bin_manager.publish("hello", released)
        for host in lab.hosts:
            _supervise_hello(host)

        first = _playbook(lab, tmp_path)
        assert first.returncode == 0, first.stdout + first.stderr
        assert all(n > 0 for n in _recap_changed(first.stdout))
        again = _playbook(lab, tmp_path)
        assert again.returncode == 0, again.stdout + again.stderr
        assert _recap_changed(again.stdout) == [0, 0], again.stdout

        for host in lab.hosts:
            etc = host.root / "etc"
            config = etc / "ansible-proxy" / "config"
            assert os.stat(config).st_mode & 0o777 == 0o600
            assert f"export BIN_MANAGER_API='{lab.cache_url}/api/v1'" in config.read_text()
            manifest = json.loads((etc / "ansible-proxy" / "bin-manifests.json").read_text())
            assert manifest["binaries"][0]["binaryName"] == "hello"
            cron_file = etc / "cron.d" / "ansible-proxy"
            assert _cron_command(cron_file, "check").startswith(str(VENV_BIN / "ansible-proxy"))
            cron_lines = cron_file.read_text().splitlines()
            # MAILTO before the jobs: cron mails their stderr (failed deploys) to the team
            assert cron_lines.index("MAILTO=ops@example.org") < cron_lines.index("SHELL=/bin/sh")
            log_file = host.root / "ansible-proxy.log"
            rotation = etc / "logrotate.d" / "ansible-proxy"
            assert os.stat(rotation).st_mode & 0o777 == 0o644
            header, body = rotation.read_text().split("\n", 1)
            assert header.startswith("# ")  # {{ ansible_managed }}
            assert body == config_for(log_file)  # the shipped file, for this host's LOG_FILE

            # Run the `run` line as cron would, inside the host's network namespace.
            command = _cron_command(cron_file, "run").replace(">/dev/null", "").strip()
            log = _cron_tick(host, command)
            assert sha256((host.app_dir / "bin" / "hello").read_bytes()) == sha
            _wait_running(host)
            entry = json.loads((etc / "ansible-proxy" / "bin-manifests.json").read_text())
            assert entry["binaries"][0]["history"] == {sha: "ok"}

            # The installed logrotate file rotates the log this tick wrote.
            rotated = logrotate(rotation, tmp_path / f"logrotate-{host.name}.state", "-f")
            assert (rotated.returncode, rotated.stderr) == (0, "")
            assert (host.root / "ansible-proxy.log.1").read_text() == log
            assert not log_file.exists()  # until the next tick writes a line

        nodes = lab.bin_manager.admin_get("/nodes").json()["data"]
        assert sorted(node["nodeName"] for node in nodes) == ["node-h1", "node-h2"]
        for host in lab.hosts:  # each with its own token, kept 0600 beside STORE_DIR
            token_file = host.root / "node-token"
            assert os.stat(token_file).st_mode & 0o777 == 0o600
            credential = lab.bin_manager.credential(f"node-{host.name}")
            assert credential["status"] == "enrolled"
            assert credential["proxy"] is None
        running = lab.bin_manager.admin_get("/bins/hello/nodes").json()["data"]
        assert {row["sha256"] for row in running} == {sha}

        # A rerun after the agent filled the manifest still changes nothing there.
        third = _playbook(lab, tmp_path)
        assert _recap_changed(third.stdout) == [0, 0], third.stdout


def test_role_installs_the_one_file_agent_which_then_deploys(tmp_path: Path) -> None:
    """`ansible_proxy_onefile`: the hosts get `make dist`'s file, no package index needed."""
    onefile = build_onefile(tmp_path / "dist")
    with running_lab(tmp_path / "lab", ["x86_64"]) as lab:
        sha = lab.bin_manager.publish("hello", program("1", port=SERVICE_PORT))
        host = lab.hosts[0]
        _supervise_hello(host)
        dest = host.root / "lib" / "ansible-proxy.pyz"
        done = _playbook(
            lab,
            tmp_path,
            ansible_proxy_install=lambda _: True,
            ansible_proxy_onefile=lambda _: str(onefile),
            ansible_proxy_onefile_dest=lambda h: str(h.root / "lib" / "ansible-proxy.pyz"),
            ansible_proxy_executable=lambda h: str(h.root / "lib" / "ansible-proxy.pyz"),
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert dest.read_bytes() == onefile.read_bytes()
        assert os.stat(dest).st_mode & 0o777 == 0o755
        cron_file = host.root / "etc" / "cron.d" / "ansible-proxy"
        command = _cron_command(cron_file, "run").replace(">/dev/null", "").strip()
        assert command.startswith(str(dest))
        _cron_tick(host, command)
        assert sha256((host.app_dir / "bin" / "hello").read_bytes()) == sha
        _wait_running(host)
