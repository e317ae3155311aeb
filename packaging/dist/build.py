"""`make dist`: the wheel, and the one-file agent for each arch (a shiv zipapp).

    python packaging/dist/build.py [--out dist] [--arch x86_64 --arch aarch64]

The one-file agent `dist/ansible-proxy-<version>-<arch>.pyz` holds the agent's code and
its dependencies for a host's `python3` 3.9 or newer: `python3 ansible-proxy-….pyz run`
(or copied to /usr/local/bin/ansible-proxy: it starts with `#!/usr/bin/env python3`).
On first run it unpacks itself once into ~/.shiv (SHIV_ROOT to change it): psutil's
compiled module cannot be imported from inside a zip.

The dependencies are resolved for the oldest Python the agent supports, on the target
arch: pip's `--python-version` selects wheels and honours Requires-Python, but it
evaluates environment markers (`exceptiongroup; python_version < "3.11"`) against the
Python that runs it, so this script walks the wheels' Requires-Dist itself, evaluating
each marker for the target, and downloads exactly that closure. The result also runs on
every newer Python (psutil's wheel is abi3).
"""

from __future__ import annotations

import argparse
import email.parser
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parents[2]
TARGET_PYTHON = "3.9"
PLATFORMS = {  # manylinux tags each arch's wheels may carry (psutil: manylinux2014 and older)
    "x86_64": ["manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux2010_x86_64"],
    "aarch64": ["manylinux2014_aarch64", "manylinux_2_17_aarch64"],
}


def target_environment(arch: str) -> dict[str, str]:
    """Marker variables of a Linux CPython 3.9 host of `arch`."""
    env = {key: str(value) for key, value in default_environment().items()}
    env.update(
        python_version=TARGET_PYTHON,
        python_full_version=f"{TARGET_PYTHON}.0",
        platform_machine=arch,
        platform_system="Linux",
        sys_platform="linux",
        implementation_name="cpython",
        platform_python_implementation="CPython",
        os_name="posix",
    )
    return env


def pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check", *args], check=True
    )


def build_wheel(out: Path) -> Path:
    pip("wheel", "--no-deps", "-w", str(out), str(ROOT))
    return max(out.glob("ansible_proxy-*.whl"), key=lambda p: p.stat().st_mtime)


def requires(wheel: Path) -> list[Requirement]:
    """The Requires-Dist lines of a wheel's METADATA."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.parser.BytesParser().parsebytes(archive.read(name))
    return [Requirement(line) for line in meta.get_all("Requires-Dist") or []]


def download_closure(wheel: Path, arch: str, house: Path) -> list[Path]:
    """`wheel` and every dependency a Python 3.9 host of `arch` needs, as wheels in `house`."""
    env = target_environment(arch)
    platform_args = [arg for tag in PLATFORMS[arch] for arg in ("--platform", tag)]
    chosen: dict[str, Path] = {canonicalize_name(parse_wheel_filename(wheel.name)[0]): wheel}
    queue = list(requires(wheel))
    while queue:
        req = queue.pop(0)
        name = canonicalize_name(req.name)
        if name in chosen or (req.marker and not req.marker.evaluate({**env, "extra": ""})):
            continue
        with tempfile.TemporaryDirectory() as tmp:
            # Without its marker, decided above: pip would decide it for its own Python.
            bare = f"{req.name}{req.specifier}"
            pip(
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--python-version",
                TARGET_PYTHON,
                "--implementation",
                "cp",
                *platform_args,
                "-d",
                tmp,
                bare,
            )
            got = next(Path(tmp).glob("*.whl"), None)
            if got is None:
                raise SystemExit(f"build: pip downloaded no wheel for {req} ({arch})")
            target = house / got.name
            shutil.move(str(got), target)
        chosen[name] = target
        queue += requires(target)
    return sorted(chosen.values())


def build_onefile(wheels: list[Path], arch: str, out: Path, version: str) -> Path:
    """The shiv zipapp of `wheels` (installed with no resolution: they are the closure)."""
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site-packages"
        pip(
            "install",
            "--no-deps",
            "--no-index",
            "--only-binary=:all:",
            "--target",
            str(site),
            "--python-version",
            TARGET_PYTHON,
            "--implementation",
            "cp",
            *[arg for tag in PLATFORMS[arch] for arg in ("--platform", tag)],
            *map(str, wheels),
        )
        target = out / f"ansible-proxy-{version}-{arch}.pyz"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "shiv",
                "--site-packages",
                str(site),
                "--entry-point",
                "ansible_proxy.cli:main",
                "--python",
                "/usr/bin/env python3",
                "--reproducible",
                "--compressed",
                "--output-file",
                str(target),
            ],
            check=True,
        )
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--arch", action="append", choices=sorted(PLATFORMS))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    wheel = build_wheel(args.out)
    version = parse_wheel_filename(wheel.name)[1]
    print(f"wheel: {wheel}")
    for arch in args.arch or sorted(PLATFORMS):
        house = args.out / f"wheels-{arch}"
        shutil.rmtree(house, ignore_errors=True)
        house.mkdir()
        wheels = download_closure(wheel, arch, house)
        onefile = build_onefile(wheels, arch, args.out, str(version))
        names = ", ".join(w.name.split("-")[0] for w in wheels)
        print(f"{arch}: {onefile} ({onefile.stat().st_size / 1e6:.1f} MB): {names}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
