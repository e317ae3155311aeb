"""`ansible-proxy install-files`: the logrotate file and the systemd units shipped inside
the package (src/ansible_proxy/share/), written where the system reads them.

An agent-only host (pip, pipx or the one-file agent) has no source tree: these files come
with the code that needs them. Each is written atomically (temp file, fsync, rename); a
file already there with other contents (an operator's edit) is left alone unless `force`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from ansible_proxy.client.files import write_atomic
from ansible_proxy.errors import ConfigError

SHARE = Path(__file__).resolve().parents[1] / "share"
UNIT_PROGRAM = "/usr/local/bin/ansible-proxy"  # what the shipped units' ExecStart names


class Shipped(NamedTuple):
    source: str  # under share/
    target: str  # absolute, under the destination root


SETS: dict[str, tuple[Shipped, ...]] = {
    "logrotate": (Shipped("logrotate/ansible-proxy", "/etc/logrotate.d/ansible-proxy"),),
    "systemd": tuple(
        Shipped(f"systemd/{unit}", f"/etc/systemd/system/{unit}")
        for unit in (
            "ansible-proxy.service",
            "ansible-proxy.timer",
            "ansible-proxy-check.service",
            "ansible-proxy-check.timer",
        )
    ),
    "bin-manager": (
        Shipped("systemd/bin-manager.service", "/etc/systemd/system/bin-manager.service"),
    ),
}


def shipped_text(item: Shipped, program: Path | None) -> bytes:
    """The file as it is written: an agent unit's ExecStart names `program` when that is
    not the /usr/local/bin/ansible-proxy the shipped units expect."""
    text = (SHARE / item.source).read_text(encoding="utf-8")
    if program is not None and not _same_file(Path(UNIT_PROGRAM), program):
        text = text.replace(f"ExecStart={UNIT_PROGRAM} ", f"ExecStart={program} ")
    return text.encode()


def _same_file(one: Path, other: Path) -> bool:
    try:
        return one.samefile(other)
    except OSError:
        return False


def install_files(
    sets: Sequence[str], dest_root: Path, force: bool, program: Path | None
) -> list[str]:
    """Write every file of `sets` under `dest_root`; one line per file for the operator.

    Every target is checked before any is written: a changed file (without `force`) stops
    the command with nothing written.
    """
    if not sets:
        raise ConfigError(
            "install-files: name what to install: --logrotate, --systemd or --bin-manager"
        )
    plan = []
    for item in (item for name in sets for item in SETS[name]):
        target = dest_root / item.target.lstrip("/")
        data = shipped_text(item, program)
        try:
            old = target.read_bytes()
        except FileNotFoundError:
            old = None
        except IsADirectoryError:
            raise ConfigError(f"install-files: {target} is a directory") from None
        if old is not None and old != data and not force:
            raise ConfigError(
                f"install-files: {target} differs from the shipped file (edited by hand?); "
                "nothing written. Compare them, then rerun with --force to replace it"
            )
        plan.append((target, data, old))
    lines = []
    for target, data, old in plan:
        if old == data:
            lines.append(f"unchanged {target}")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, data, mode=0o644)
        lines.append(f"{'replaced' if old is not None else 'wrote'} {target}")
    return lines
