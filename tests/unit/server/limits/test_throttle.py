"""The per-client budgets group addresses: an IPv6 /64 is one client, and enrolments group
an IPv4 /24 too (issue 25.7: 40 addresses of one network filled the approval queue)."""

from __future__ import annotations

import pytest
from starlette.exceptions import HTTPException

from ansible_proxy.server.limits.throttle import Bucket, Throttle, client_group


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("address", "v4", "group"),
    [
        ("198.51.100.7", 32, "198.51.100.7/32"),
        ("198.51.100.7", 24, "198.51.100.0/24"),
        ("2001:db8:1:2:aaaa::1", 32, "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", 24, "2001:db8:1:2::/64"),
        ("::ffff:198.51.100.7", 24, "198.51.100.0/24"),  # an IPv4-mapped address is IPv4
        ("fe80::1%eth0", 32, "fe80::/64"),
        ("unknown", 24, "unknown"),  # no client address: one group of its own
    ],
)
def test_addresses_are_grouped_by_network(address: str, v4: int, group: str) -> None:
    assert client_group(address, v4, 64) == group


def test_a_whole_ipv6_64_shares_one_budget_and_another_64_has_its_own() -> None:
    clock = Clock()
    bucket = Bucket("enrolment requests", 3, 0.5, clock, ipv4_prefix=24)
    for host in range(3):  # three addresses of one /64, one request each
        bucket.check(f"2001:db8:0:1::{host + 1:x}")
        bucket.take(f"2001:db8:0:1::{host + 1:x}")
    with pytest.raises(HTTPException) as refused:
        bucket.check("2001:db8:0:1:ffff::9")
    assert refused.value.status_code == 429
    assert "from 2001:db8:0:1::/64" in str(refused.value.detail)
    bucket.check("2001:db8:0:2::1")  # the next /64: untouched
    clock.now += 2  # one request more every 2 s
    bucket.check("2001:db8:0:1::1")


def test_enrolments_group_an_ipv4_24_and_failures_only_the_address() -> None:
    throttle = Throttle(2, 0.5, 2, 0.5)
    for last in (1, 2):
        throttle.enrolments.take(f"198.51.100.{last}")
        throttle.failures.take(f"198.51.100.{last}")
    with pytest.raises(HTTPException):
        throttle.enrolments.check("198.51.100.200")  # the same /24
    throttle.enrolments.check("198.51.101.1")  # another /24
    throttle.failures.check("198.51.100.200")  # failures: per address
