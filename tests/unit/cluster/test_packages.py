"""Safe package extraction: good packages land whole in releases/<service>/<sha>/, and
every malicious one is refused with a clear error, nothing written outside staging."""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import os
import stat
import tarfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from examples.cluster.build_package import build_package

from ansible_proxy.cluster.packages import Limits, UnsafePackage, extract_release
from ansible_proxy.errors import DeployError

Adder = Callable[[tarfile.TarFile], None]


def _file(name: str, data: bytes = b"x", mode: int = 0o644) -> Adder:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), mode
        tar.addfile(info, io.BytesIO(data))

    return add


def _special(name: str, kind: bytes, linkname: str = "") -> Adder:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.linkname, info.mode = kind, linkname, 0o644
        tar.addfile(info)

    return add


def make_package(path: Path, *adders: Adder, with_playbook: bool = True) -> Path:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        if with_playbook:
            _file("deploy.yml", b"- hosts: all\n  tasks: []\n")(tar)
        for add in adders:
            add(tar)
    path.write_bytes(gzip.compress(raw.getvalue()))
    return path


def listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def box(tmp_path: Path) -> Path:
    """The only place extraction may write; `tmp_path/outside` is watched for writes."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "work").mkdir()
    return tmp_path


SHA = "a" * 64


def test_example_package_is_unpacked_into_releases_service_sha(box: Path) -> None:
    data = build_package("aarch64", "7")
    archive = box / "pkg.tar.gz"
    archive.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    release = extract_release(archive, box / "work", "hello", sha, Limits())
    assert release == box / "work" / "hello" / sha
    assert listing(release) == {
        "bin",
        "bin/hello",
        "files",
        "files/hello.conf.j2",
        "deploy.yml",
        "rollback.yml",
    }
    assert 'ARCH = "aarch64"' in (release / "bin" / "hello").read_text()
    assert os.access(release / "bin" / "hello", os.X_OK)
    assert listing(box / "work" / "hello") == {sha, *(f"{sha}/{p}" for p in listing(release))}


def test_an_inside_symlink_and_hardlink_are_fine(box: Path) -> None:
    archive = make_package(
        box / "p.tar.gz",
        _file("lib/real.so", b"elf"),
        _special("lib/alias.so", tarfile.SYMTYPE, "real.so"),
        _special("lib/up.so", tarfile.SYMTYPE, "../deploy.yml"),
        _special("hard.so", tarfile.LNKTYPE, "lib/real.so"),
    )
    release = extract_release(archive, box / "work", "svc", SHA, Limits())
    assert (release / "lib" / "alias.so").read_bytes() == b"elf"
    assert (release / "hard.so").read_bytes() == b"elf"


MALICIOUS: dict[str, tuple[list[Adder], str]] = {
    "dotdot": ([_file("../outside/evil", b"pwned")], "'..'"),
    "nested-dotdot": ([_file("a/../../outside/evil", b"pwned")], "'..'"),
    "absolute": ([_file(f"/tmp/ap-absolute-{os.getpid()}", b"pwned")], "absolute"),
    "symlink-escape": (
        [_special("link", tarfile.SYMTYPE, "../outside"), _file("link/evil", b"pwned")],
        "symlink",
    ),
    "symlink-absolute": ([_special("etc", tarfile.SYMTYPE, "/etc")], "absolute"),
    "symlink-chain": (
        [
            _special("here", tarfile.SYMTYPE, "."),
            _special("esc", tarfile.SYMTYPE, "here/../../outside"),
        ],
        "leaves the package",
    ),
    "symlink-via-dir-link": (
        [
            _special("d", tarfile.SYMTYPE, "."),
            _special("x", tarfile.SYMTYPE, "d/../.."),
        ],
        "leaves the package",
    ),
    "hardlink-escape": ([_special("h", tarfile.LNKTYPE, "../outside/target")], "'..'"),
    "hardlink-absolute": ([_special("h", tarfile.LNKTYPE, "/etc/passwd")], "absolute"),
    "hardlink-to-nothing": ([_special("h", tarfile.LNKTYPE, "missing")], "hardlink"),
    "char-device": ([_special("null", tarfile.CHRTYPE)], "device"),
    "block-device": ([_special("sda", tarfile.BLKTYPE)], "device"),
    "fifo": ([_special("pipe", tarfile.FIFOTYPE)], "fifo"),
    "setuid": ([_file("bin/su", b"x", 0o4755)], "setuid"),
    "setgid": ([_file("bin/sg", b"x", 0o2755)], "setgid"),
    "duplicate": ([_file("a", b"1"), _special("a", tarfile.SYMTYPE, "../outside")], "twice"),
}


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_package_is_refused_and_nothing_is_written(box: Path, case: str) -> None:
    adders, reason = MALICIOUS[case]
    archive = make_package(box / "evil.tar.gz", *adders)
    before = listing(box)
    with pytest.raises(UnsafePackage, match=reason):
        extract_release(archive, box / "work", "svc", SHA, Limits())
    assert listing(box / "outside") == set()
    assert listing(box) == before | {"work/svc"}  # only the empty service folder
    assert list((box / "work" / "svc").iterdir()) == []
    assert not Path(f"/tmp/ap-absolute-{os.getpid()}").exists()


def _empty_files(count: int) -> bytes:
    """`count` empty files f0000000, f0000001… as GNU tar headers, made from one header by
    changing the name and its checksum (tarfile's addfile takes seconds for 100,000)."""
    first = tarfile.TarInfo("f0000000")
    first.mode = 0o644
    header = bytearray(first.tobuf(tarfile.GNU_FORMAT))
    header[148:156] = b" " * 8  # the checksum field counts as spaces in its own sum
    others = sum(header) - sum(b"f0000000")
    blocks = []
    for i in range(count):
        name = b"f%07d" % i
        header[0:8] = name
        header[148:156] = b"%06o\0 " % (others + sum(name))
        blocks.append(bytes(header))
    return b"".join(blocks) + b"\0" * 1024  # and the end-of-archive blocks


def test_a_100000_entry_bomb_is_refused_at_the_cap(box: Path) -> None:
    raw = _empty_files(100_000)
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:  # a tar as tarfile writes it
        assert [m.name for m in itertools.islice(tar, 3)] == ["f0000000", "f0000001", "f0000002"]
    archive = box / "bomb.tar.gz"
    archive.write_bytes(gzip.compress(raw, compresslevel=1))
    with pytest.raises(UnsafePackage, match="more than 10000 entries"):
        extract_release(archive, box / "work", "svc", SHA, Limits())
    assert list((box / "work" / "svc").iterdir()) == []


def test_a_header_claiming_terabytes_is_refused_before_reading_it(box: Path) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("deploy.yml")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"- {}"))
        header = tarfile.TarInfo("huge")
        header.size = 2 * 1024**4
        raw.write(header.tobuf(tarfile.GNU_FORMAT))  # the header only: no 2 TiB of data
    archive = box / "bomb.tar.gz"
    archive.write_bytes(gzip.compress(raw.getvalue()))
    with pytest.raises(UnsafePackage, match="unpacks to more than"):
        extract_release(archive, box / "work", "svc", SHA, Limits())


@pytest.mark.parametrize("kind", [tarfile.XHDTYPE, tarfile.GNUTYPE_LONGNAME], ids=["pax", "gnu"])
def test_a_gzip_bomb_in_an_extended_header_is_refused_before_it_is_read(
    box: Path, kind: bytes
) -> None:
    """256 MiB of header data (a PAX header or a GNU long name) in a ~250 KiB package:
    refused from the header's 512 bytes, memory bounded (tarfile would read it whole)."""
    size = 256 * 1024**2
    header = tarfile.TarInfo("././@PaxHeader" if kind == tarfile.XHDTYPE else "././@LongLink")
    header.type, header.size = kind, size
    archive = box / "bomb.tar.gz"
    # One gzip member per MiB, compressed once: gzip readers go on to the next member, so
    # this unpacks to the header and 256 MiB of its data at no cost to make.
    mib = gzip.compress(b"0" * 1024**2, compresslevel=9)
    head = gzip.compress(header.tobuf(tarfile.GNU_FORMAT))
    archive.write_bytes(head + mib * (size // 1024**2))
    assert archive.stat().st_size < 1024**2
    tracemalloc.start()
    try:
        with pytest.raises(UnsafePackage, match=f"a {size}-byte extended header"):
            extract_release(archive, box / "work", "svc", SHA, Limits())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024**2
    assert list((box / "work" / "svc").iterdir()) == []


def test_many_headers_under_the_header_cap_stop_at_the_stream_cap(box: Path) -> None:
    """PAX headers are no entries and no content: only the stream cap bounds them."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for i in range(60):
            info = tarfile.TarInfo(f"f{i}")
            info.pax_headers = {"comment": "x" * 60_000}
            tar.addfile(info)
    archive = box / "headers.tar.gz"
    archive.write_bytes(gzip.compress(raw.getvalue()))
    limits = Limits(max_entries=100, max_bytes=1024**2, max_header_bytes=64 * 1024)
    with pytest.raises(UnsafePackage, match="bytes of tar stream"):
        extract_release(archive, box / "work", "svc", SHA, limits)
    assert list((box / "work" / "svc").iterdir()) == []


def test_real_content_over_the_size_cap_is_refused(box: Path) -> None:
    archive = make_package(box / "big.tar.gz", _file("blob", b"\0" * (2 * 1024 * 1024)))
    with pytest.raises(UnsafePackage, match="unpacks to more than 1048576 bytes"):
        extract_release(archive, box / "work", "svc", SHA, Limits(max_bytes=1024 * 1024))
    assert list((box / "work" / "svc").iterdir()) == []


def test_a_package_without_deploy_yml_is_refused(box: Path) -> None:
    archive = make_package(box / "p.tar.gz", _file("README"), with_playbook=False)
    with pytest.raises(DeployError, match=r"no deploy\.yml"):
        extract_release(archive, box / "work", "svc", SHA, Limits())
    assert list((box / "work" / "svc").iterdir()) == []


def test_not_a_tarball_is_a_clear_deploy_error(box: Path) -> None:
    archive = box / "junk.tar.gz"
    archive.write_bytes(b"this is not gzip")
    with pytest.raises(DeployError, match=r"not a readable tar\.gz"):
        extract_release(archive, box / "work", "svc", SHA, Limits())


def test_extracting_again_keeps_the_existing_release(box: Path) -> None:
    archive = make_package(box / "p.tar.gz", _file("bin/tool", b"v1", 0o755))
    release = extract_release(archive, box / "work", "svc", SHA, Limits())
    marker = (release / "bin" / "tool").stat().st_ino
    assert extract_release(archive, box / "work", "svc", SHA, Limits()) == release
    assert (release / "bin" / "tool").stat().st_ino == marker
    assert stat.S_IMODE((release / "bin" / "tool").stat().st_mode) & 0o111
