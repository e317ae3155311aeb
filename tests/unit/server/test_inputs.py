"""Input checks done before anything touches storage: bin names, arches, sha256, text."""

from __future__ import annotations

import pytest

from ansible_proxy.server.inputs import (
    check_arch,
    check_bin_name,
    check_sha256,
    check_text,
    choose_arch,
)
from ansible_proxy.server.problems import BadRequest


@pytest.mark.parametrize("name", ["a", "manager", "my-app_1.2", "A" * 128, "..a", ".hidden"])
def test_valid_bin_names_pass(name: str) -> None:
    assert check_bin_name(name) == name


@pytest.mark.parametrize(
    "name", ["", ".", "..", "a/b", "../etc", "a b", "x" * 129, "a\x00", "é", "a%2Fb", "a\\b"]
)
def test_bad_bin_names_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(BadRequest, match="invalid bin name"):
        check_bin_name(name)


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("x86_64", "x86_64"),
        ("amd64", "x86_64"),
        ("AMD64", "x86_64"),
        ("aarch64", "aarch64"),
        ("arm64", "aarch64"),
        (" arm64 ", "aarch64"),
    ],
)
def test_arch_aliases(given: str, canonical: str) -> None:
    assert check_arch(given) == canonical


@pytest.mark.parametrize("arch", ["", "i386", "armv7l", "x86-64", "sparc"])
def test_unknown_arch_is_refused(arch: str) -> None:
    with pytest.raises(BadRequest, match="unknown cpu arch"):
        check_arch(arch)


@pytest.mark.parametrize(
    ("requested", "node_arch", "chosen"),
    [
        (None, None, "x86_64"),
        ("", "aarch64", "aarch64"),
        (None, "arm64", "aarch64"),
        (None, "riscv64", "x86_64"),  # a node on an arch we do not build for: the default
        ("amd64", "aarch64", "x86_64"),  # an explicit arch wins over the node's
    ],
)
def test_choose_arch(requested: str | None, node_arch: str | None, chosen: str) -> None:
    assert choose_arch(requested, node_arch) == chosen


def test_choose_arch_refuses_an_explicit_unknown_arch() -> None:
    with pytest.raises(BadRequest):
        choose_arch("mips", "x86_64")


def test_sha256_is_folded_to_lower_case_and_checked() -> None:
    digest = "AB" * 32
    assert check_sha256(digest) == "ab" * 32
    for bad in ("", "g" * 64, "a" * 63, "a" * 65, "../" + "a" * 61):
        with pytest.raises(BadRequest, match="invalid sha256"):
            check_sha256(bad)


def test_text_with_nul_is_refused() -> None:
    assert check_text("host-1", "nodeName") == "host-1"
    with pytest.raises(BadRequest, match="nodeName contains a NUL"):
        check_text("host\x00", "nodeName")
