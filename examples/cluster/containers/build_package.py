"""Build the container example package `web` for one cpu arch from an OCI image archive.

    podman save --format oci-archive -o web-x86_64.tar localhost/web:2.4.1
    python examples/cluster/containers/build_package.py --arch x86_64 \
        --image web-x86_64.tar --version 2.4.1 --out dist/
    bin-manager publish dist/web-x86_64-2.4.1.tar.gz --name web-pkg --arch x86_64

Layout: deploy.yml, rollback.yml, images/web.tar (the arch's image), files/web.conf.j2.
The image must serve on $WEB_LISTEN (ADDRESS:PORT), which the supervisor program sets.
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


def build_package(
    arch: str, image: Path, *, deploy: str | None = None, rollback: str | None = None
) -> bytes:
    """The package's bytes (reproducible: fixed times, owners, order); `image` is the
    arch's OCI archive; `deploy`/`rollback` replace the example's playbooks."""
    if arch not in ARCHES:
        raise ValueError(f"arch must be one of {ARCHES}, not {arch!r}")
    files = {
        "deploy.yml": (deploy or (HERE / "deploy.yml").read_text()).encode(),
        "rollback.yml": (rollback or (HERE / "rollback.yml").read_text()).encode(),
        "files/web.conf.j2": (HERE / "web.conf.j2").read_bytes(),
        "images/web.tar": image.read_bytes(),
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in ("files", "images"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=ARCHES, required=True)
    parser.add_argument("--image", type=Path, required=True, help="the arch's OCI archive")
    parser.add_argument("--version", default="1")
    parser.add_argument("--out", type=Path, default=Path("dist"))
    args = parser.parse_args()
    data = build_package(args.arch, args.image)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"web-{args.arch}-{args.version}.tar.gz"
    path.write_bytes(data)
    print(f"{hashlib.sha256(data).hexdigest()}  {path}")


if __name__ == "__main__":
    main()
