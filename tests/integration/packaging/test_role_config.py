"""The role's config file, rendered by real Ansible (the role run on localhost): every value
comes out as one literal, read back the same by the agent's parser and by sh."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from ansible_proxy.client.config import build_config, parse_config_text
from tests.support.cluster import VENV_BIN

ROLES = Path(__file__).resolve().parents[3] / "packaging" / "ansible" / "roles"
AGENT = str(VENV_BIN / "ansible-proxy")  # the role checks TRUSTED_KEYS with the host's agent
HOSTILE = {
    "BIN_MANAGER_API": "http://127.0.0.1:9/api/v1",
    "BIN_MANAGER_TOKEN": 'it\'s a "secret" with $HOME, ${PATH}, `id` and $(id); \\ # end',
    "SUPERVISOR_PASSWORD": "'; touch /tmp/pwned; echo '",
    "NODE_NAME": "  spaced  ",
}


def _run_role(
    tmp_path: Path, config: dict[str, str], **more: object
) -> subprocess.CompletedProcess[str]:
    variables: dict[str, object] = {
        "ansible_proxy_install": False,
        "ansible_proxy_link": "",
        "ansible_proxy_schedule": "none",
        "ansible_proxy_logrotate_file": "",
        "ansible_proxy_config_path": str(tmp_path / "etc" / "config"),
        "ansible_proxy_manifest_path": str(tmp_path / "etc" / "bin-manifests.json"),
        "ansible_proxy_config": config,
        **more,
    }
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    playbook = tmp_path / "site.yml"
    playbook.write_text(
        textwrap.dedent("""\
        - hosts: localhost
          connection: local
          gather_facts: false
          roles: [ansible_proxy_agent]
        """)
    )
    argv = [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", str(playbook)]
    argv += ["-e", f"@{tmp_path / 'vars.json'}"]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "ANSIBLE_ROLES_PATH": str(ROLES)}
    env["ANSIBLE_NOCOLOR"] = "1"
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=240, check=False)


def test_hostile_values_come_out_as_one_literal_each(tmp_path: Path) -> None:
    done = _run_role(tmp_path, HOSTILE)
    assert done.returncode == 0, done.stdout + done.stderr
    text = (tmp_path / "etc" / "config").read_text()
    values, warnings = parse_config_text(text, "config", {})
    assert warnings == []
    assert {key: values[key] for key in HOSTILE} == HOSTILE
    # and a shell reading it (it should not, but may) gets the same, running nothing
    script = '. "$1" && printf "%s\\0" "$BIN_MANAGER_TOKEN" "$SUPERVISOR_PASSWORD"'
    shell = subprocess.run(
        ["sh", "-c", script, "-", str(tmp_path / "etc" / "config")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nowhere"},
        check=True,
    )
    assert shell.stdout.split("\0")[:2] == [
        HOSTILE["BIN_MANAGER_TOKEN"],
        HOSTILE["SUPERVISOR_PASSWORD"],
    ]
    assert not Path("/tmp/pwned").exists()


def test_a_value_with_a_newline_is_refused_by_the_role(tmp_path: Path) -> None:
    done = _run_role(tmp_path, {**HOSTILE, "BIN_MANAGER_TOKEN": "two\nlines"})
    assert done.returncode != 0
    assert "values hold no newline" in done.stdout
    assert not (tmp_path / "etc" / "config").exists()


def key_lines(tmp_path: Path, *names: str) -> list[str]:
    """A TRUSTED_KEYS line per name, as `bin-manager keygen` prints them."""
    lines = []
    for number, name in enumerate(names):
        key = tmp_path / f"key-{number}"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        public = key.with_suffix(".pub").read_text().strip()
        lines.append(f'{name} namespaces="ansible-proxy-release" {public}')
    return lines


def test_the_publishers_keys_are_written_and_set_as_trusted_keys(tmp_path: Path) -> None:
    lines = key_lines(tmp_path, "alice", "bob")
    path = tmp_path / "etc" / "trusted_keys"
    done = _run_role(
        tmp_path,
        {"BIN_MANAGER_API": "http://198.51.100.7:8080/api/v1"},  # plain HTTP: signed instead
        ansible_proxy_trusted_keys=lines,
        ansible_proxy_trusted_keys_threshold=2,
        ansible_proxy_trusted_keys_path=str(path),
        ansible_proxy_executable=AGENT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert [ln for ln in path.read_text().splitlines() if not ln.startswith("#")] == lines
    values, warnings = parse_config_text((tmp_path / "etc" / "config").read_text(), "config", {})
    assert warnings == []
    assert values["TRUSTED_KEYS"] == str(path)
    cfg = build_config(values, {}, {}, "host")  # what the agent then reads: 2 of alice, bob
    assert cfg.trusted_keys is not None
    assert (cfg.trusted_keys.principals, cfg.trusted_keys.threshold) == (("alice", "bob"), 2)

    (tmp_path / "bad").mkdir()
    bad = _run_role(
        tmp_path / "bad",
        HOSTILE,
        ansible_proxy_trusted_keys=["alice ssh-rsa AAAA", *lines],
        ansible_proxy_trusted_keys_path=str(tmp_path / "bad-keys"),
        ansible_proxy_executable=AGENT,
    )
    assert bad.returncode != 0
    assert ":4: expected `principal [namespaces=" in bad.stdout, bad.stdout
    assert not (tmp_path / "bad-keys").exists()
    assert not (tmp_path / "bad" / "etc" / "config").exists()


# Each ended alice's line for str.splitlines(), which the agent used, but not for OpenSSH;
# the role's own pattern let them through, and the agent then took one signature of two.
HIDDEN = {"CR": "\r", "VT": "\x0b", "RS": "\x1e", "NEL": "\x85", "LS": "\u2028"}


@pytest.mark.parametrize("hidden", HIDDEN.values(), ids=HIDDEN.keys())
def test_a_key_line_hiding_a_lower_threshold_is_refused_by_the_role(
    tmp_path: Path, hidden: str
) -> None:
    alice, bob = key_lines(tmp_path, "alice", "bob")
    path = tmp_path / "etc" / "trusted_keys"
    refused = _run_role(
        tmp_path,
        {"BIN_MANAGER_API": "http://198.51.100.7:8080/api/v1"},
        ansible_proxy_trusted_keys=[f"{alice}{hidden}# threshold: 1", bob],
        ansible_proxy_trusted_keys_threshold=2,
        ansible_proxy_trusted_keys_path=str(path),
        ansible_proxy_executable=AGENT,
    )
    assert refused.returncode != 0, refused.stdout
    assert f":4: holds U+{ord(hidden):04X} " in refused.stdout, refused.stdout
    assert not path.exists()
    assert not (tmp_path / "etc" / "config").exists()


def test_two_keys_of_one_principal_do_not_make_a_threshold_of_two(tmp_path: Path) -> None:
    alice, alice_again = key_lines(tmp_path, "alice", "alice")
    path = tmp_path / "etc" / "trusted_keys"
    refused = _run_role(
        tmp_path,
        {"BIN_MANAGER_API": "http://198.51.100.7:8080/api/v1"},
        ansible_proxy_trusted_keys=[alice, alice_again],
        ansible_proxy_trusted_keys_threshold=2,
        ansible_proxy_trusted_keys_path=str(path),
        ansible_proxy_executable=AGENT,
    )
    assert refused.returncode != 0, refused.stdout
    assert "threshold 2 but 1 distinct signers" in refused.stdout, refused.stdout
    assert not path.exists()
