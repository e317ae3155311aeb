"""Build the example deployment package `hello` for one cpu arch (a reproducible tar.gz).

    python examples/cluster/build_package.py --arch aarch64 --version 2 --out dist/
    bin-manager publish dist/hello-aarch64-2.tar.gz --name hello-pkg --arch aarch64

Layout: deploy.yml, rollback.yml, bin/hello (the arch's build), files/hello.conf.j2.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent / "package"
ARCHES = ("x86_64", "aarch64")


def program_for(arch: str, version: str) -> str:
    """The tiny service stamped with its arch and version (a real build would compile)."""
    text = (HERE / "hello.py").read_text()
    return text.replace("@ARCH@", arch).replace("@VERSION@", version)


def build_package(
    arch: str,
    version: str,
    *,
    deploy: str | None = None,
    rollback: str | None = None,
    program: str | None = None,
) -> bytes:
    """The package's bytes; `deploy`/`rollback`/`program` replace the example's files."""
    if arch not in ARCHES:
        raise ValueError(f"arch must be one of {ARCHES}, not {arch!r}")
    files = {
        "deploy.yml": (deploy or (HERE / "deploy.yml").read_text(), 0o644),
        "rollback.yml": (rollback or (HERE / "rollback.yml").read_text(), 0o644),
        "bin/hello": (program or program_for(arch, version), 0o755),
        "files/hello.conf.j2": ((HERE / "hello.conf.j2").read_text(), 0o644),
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in ("bin", "files"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, (text, mode) in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=ARCHES, required=True)
    parser.add_argument("--version", default="1")
    parser.add_argument("--out", type=Path, default=Path("dist"))
    args = parser.parse_args()
    data = build_package(args.arch, args.version)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"hello-{args.arch}-{args.version}.tar.gz"
    path.write_bytes(data)
    print(f"{hashlib.sha256(data).hexdigest()}  {path}")


if __name__ == "__main__":
    main()
