"""Names and hashes are matched whole: a trailing newline or carriage return never passes."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from ansible_proxy.cluster.nginx import CacheConfig, render
from ansible_proxy.errors import ConfigError
from ansible_proxy.names import MAX_NODE_NAME, is_bin_name, is_node_name, is_sha256
from ansible_proxy.protocol import BinName, NodeName, Sha256
from ansible_proxy.server.inputs import check_bin_name, check_node_name, check_sha256
from ansible_proxy.server.problems import BadRequest, Unprocessable

SHA = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
BAD_NAMES = ["app\n", "app\r", "app\r\n", "\napp", "app\nother", "app\x00", ".", "..", ""]
BAD_SHAS = [SHA + "\n", SHA + "\r", "\n" + SHA, SHA.upper(), SHA[:-1], SHA + "0"]


@pytest.mark.parametrize("name", ["app", "a", "my-app_2.1", "A" * 128, "..app", ".hidden"])
def test_normal_bin_names_are_accepted(name: str) -> None:
    assert is_bin_name(name)
    assert check_bin_name(name) == name
    assert TypeAdapter(BinName).validate_python(name) == name


@pytest.mark.parametrize("name", [*BAD_NAMES, "A" * 129])
def test_bin_names_with_anything_around_them_are_refused(name: str) -> None:
    assert not is_bin_name(name)
    with pytest.raises(BadRequest, match="invalid bin name"):
        check_bin_name(name)


@pytest.mark.parametrize("name", ["app\n", "app\r", "\napp"])
def test_the_wire_type_refuses_a_line_break_too(name: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(BinName).validate_python(name)


@pytest.mark.parametrize(
    "name", ["web-01", "web-01.example.com", "n", "node_7", "A" * MAX_NODE_NAME, "10.0.0.1"]
)
def test_normal_node_names_are_accepted(name: str) -> None:
    assert is_node_name(name)
    assert check_node_name(name) == name
    assert TypeAdapter(NodeName).validate_python(name) == name


@pytest.mark.parametrize(
    "name",
    [*BAD_NAMES, "A" * (MAX_NODE_NAME + 1), "web 01", "a/b", "a\tb", "<b>", "a{b}", "é", "a:1"],
)
def test_node_names_outside_the_safe_set_are_refused_with_one_message(name: str) -> None:
    assert not is_node_name(name)
    with pytest.raises(Unprocessable, match="invalid node name") as refused:
        check_node_name(name)
    assert refused.value.status == 422
    with pytest.raises(ValidationError) as invalid:  # before pydantic strips "node\n"
        TypeAdapter(NodeName).validate_python(name)
    assert invalid.value.errors()[0]["msg"] == refused.value.message


def test_a_lower_case_sha256_is_accepted() -> None:
    assert is_sha256(SHA)
    assert TypeAdapter(Sha256).validate_python(SHA) == SHA


@pytest.mark.parametrize("value", BAD_SHAS)
def test_sha256_with_anything_around_it_is_refused(value: str) -> None:
    assert not is_sha256(value)
    with pytest.raises(ValidationError):
        TypeAdapter(Sha256).validate_python(value)


def test_the_server_folds_a_pasted_sha256_to_the_bare_digest() -> None:
    # Query and form values are stripped and lower-cased before the whole-string check,
    # so what the server stores or looks up never carries the newline.
    assert check_sha256(SHA.upper() + "\n") == SHA
    with pytest.raises(BadRequest, match="invalid sha256"):
        check_sha256(SHA + "\nx")


@pytest.mark.parametrize(
    ("listen", "max_size", "flag"),
    [("8081\n", "10g", "--listen"), ("127.0.0.1:8081\n", "10g", "--listen"),
     ("8081", "10g\n", "--max-size"), ("8081", "10g\nevil;", "--max-size")],
)  # fmt: skip
def test_nginx_values_are_matched_whole(
    tmp_path: Path, listen: str, max_size: str, flag: str
) -> None:
    with pytest.raises(ConfigError, match=flag):
        render(CacheConfig("http://origin:8080", listen, tmp_path, max_size))
