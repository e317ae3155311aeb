"""The wire contract accepts the original design's examples and refuses what it must."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ansible_proxy.protocol import (
    BinReport,
    Envelope,
    LatestBin,
    NodeInfo,
    ProgressReport,
    ProgressStatus,
    is_bin_name,
    is_one_line,
    normalize_arch,
    ok,
)

SHA = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"


def test_original_design_requests_parse_unchanged() -> None:
    node = NodeInfo.model_validate(
        {
            "cpuArch": "x86_64",
            "osRelease": "Ubuntu 20.04.3 LTS",
            "nodeName": "host-001",
            "binProxyVersion": "1.1.0",
        }
    )
    assert node.nodeName == "host-001"
    report = BinReport.model_validate(
        {"nodeName": "host-001", "binName": "manager", "sha256": SHA, "version": "latest"}
    )
    assert report.sha256 == SHA
    progress = ProgressReport.model_validate(
        {
            "nodeName": "host-001",
            "binName": "manager",
            "targetHash": SHA,
            "processingTime": 45,
            "status": "in_progress",
        }
    )
    assert progress.status is ProgressStatus.IN_PROGRESS


def test_envelope_has_the_original_shape() -> None:
    body = Envelope[LatestBin](data=LatestBin(sha256=SHA)).model_dump()
    assert body == {"code": 0, "message": "success", "data": {"sha256": SHA, "version": "latest"}}
    assert ok() == {"code": 0, "message": "success"}


@pytest.mark.parametrize(
    "field, value",
    [
        ("status", "done"),
        ("processingTime", -1),
        ("targetHash", "abc"),
        ("binName", "../etc/passwd"),
    ],
)
def test_progress_refuses_bad_values(field: str, value: object) -> None:
    body: dict[str, object] = {
        "nodeName": "n",
        "binName": "manager",
        "targetHash": SHA,
        "processingTime": 1,
        "status": "success",
    }
    body[field] = value
    with pytest.raises(ValidationError):
        ProgressReport.model_validate(body)


@pytest.mark.parametrize(
    "name, valid",
    [
        ("manager", True),
        ("my-svc_1.2", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("", False),
        ("..", False),
        (".", False),
        ("a/b", False),
        ("a b", False),
    ],
)
def test_bin_names(name: str, valid: bool) -> None:
    assert is_bin_name(name) is valid


def test_arch_aliases() -> None:
    assert normalize_arch("amd64") == "x86_64"
    assert normalize_arch("ARM64") == "aarch64"
    assert normalize_arch("aarch64") == "aarch64"
    assert normalize_arch("mips") is None


def _progress(**extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "nodeName": "n",
        "binName": "manager",
        "targetHash": SHA,
        "processingTime": 1,
        "status": "failed",
    }
    return body | extra


def test_a_progress_reason_is_optional_stripped_and_one_line() -> None:
    assert ProgressReport.model_validate(_progress()).reason is None
    why = "inspector: alerts: firing HighErrorRate"
    assert ProgressReport.model_validate(_progress(reason=f"  {why} \n")).reason == why
    assert ProgressReport.model_validate(_progress(reason="ü" * 300)).reason == "ü" * 300
    assert is_one_line("pin: moved back to 1e133a643068 (withdrawn: 61ba3d2015b5)")


@pytest.mark.parametrize(
    "reason",
    ["x" * 301, "two\nlines", "a\ttab", "nul\x00", "\x1b[31mred", "rtl\u202eltr", "p\u2029q"],
)
def test_a_progress_reason_too_long_or_not_one_line_is_refused(reason: str) -> None:
    assert not is_one_line(reason) or len(reason) > 300
    with pytest.raises(ValidationError, match="reason"):
        ProgressReport.model_validate(_progress(reason=reason))


def test_a_progress_cause_is_one_of_three_and_optional() -> None:
    assert ProgressReport.model_validate(_progress()).cause is None  # the original contract
    for cause in ("release", "host", "refused"):
        assert ProgressReport.model_validate(_progress(cause=cause)).cause == cause
    with pytest.raises(ValidationError, match="cause"):
        ProgressReport.model_validate(_progress(cause="the network"))
