"""Installs of the distribution into fresh virtualenvs, as an operator makes them.

`build_wheel(out)` builds this checkout's wheel (no dependencies); `install(venv, wheel,
extra)` makes an empty virtualenv and pip-installs the wheel (with `[extra]`) from the
package index, and `footprint(venv)` counts what that brought beyond the empty one:
distributions and bytes of site-packages. Used by the install tests and the benchmarks.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

from tests.support.debian_root import cache_lock

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Footprint:
    distributions: tuple[str, ...]  # beyond an empty virtualenv's, ansible-proxy included
    bytes: int  # site-packages, minus the empty virtualenv's

    @property
    def megabytes(self) -> float:
        return self.bytes / 1e6


def build_wheel(out: Path) -> Path:
    """This checkout as a wheel in `out` (the agent's and every extra's code)."""
    out.mkdir(parents=True, exist_ok=True)
    with cache_lock():  # pip builds the checkout in place: one build at a time (py39.py)
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return next(out.glob("ansible_proxy-*.whl"))


def empty_venv(path: Path) -> Path:
    """A new virtualenv with only pip (and whatever ensurepip brings); its python."""
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    return path / "bin" / "python"


def install(path: Path, wheel: Path, extra: str = "") -> Path:
    """An empty virtualenv at `path`, then `pip install WHEEL[extra]`; its bin directory."""
    python = empty_venv(path)
    requirement = f"{wheel}[{extra}]" if extra else str(wheel)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", requirement],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return path / "bin"


def site_packages(path: Path) -> Path:
    return next((path / "lib").glob("python3*/site-packages"))


def distributions(path: Path) -> set[str]:
    """The names of the distributions installed in the virtualenv at `path`."""
    names = set()
    for meta in site_packages(path).glob("*.dist-info"):
        name = meta.name.removesuffix(".dist-info").rsplit("-", 1)[0]
        names.add(name.lower().replace("_", "-"))
    return names


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def footprint(installed: Path, empty: Path) -> Footprint:
    """What the install at `installed` holds beyond the empty virtualenv at `empty`."""
    extra = distributions(installed) - distributions(empty)
    grown = tree_bytes(site_packages(installed)) - tree_bytes(site_packages(empty))
    return Footprint(tuple(sorted(extra)), grown)
