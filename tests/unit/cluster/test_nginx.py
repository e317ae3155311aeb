"""The rendered nginx cache config: accepted by the real nginx, caching only ?sha256=."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ansible_proxy.cluster.nginx import CacheConfig, prepare_dirs, render
from ansible_proxy.errors import ConfigError


def test_standalone_config_passes_nginx_t(tmp_path: Path) -> None:
    config = CacheConfig("http://127.0.0.1:8080", "127.0.0.1:18081", tmp_path, standalone=True)
    prepare_dirs(tmp_path)
    (tmp_path / "nginx.conf").write_text(render(config))
    result = subprocess.run(
        ["/usr/sbin/nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_downloads_are_cached_by_uri_and_args_with_a_lock(tmp_path: Path) -> None:
    text = render(CacheConfig("http://origin:8080", "10.0.0.5:8081", tmp_path))
    assert 'proxy_cache_key "$uri?$args";' in text
    assert "proxy_cache_lock on;" in text
    assert "proxy_cache_valid 200 365d;" in text
    assert "listen 10.0.0.5:8081;" in text
    assert "proxy_pass http://origin:8080;" in text
    assert "events" not in text  # an include for the http{} block, not a whole config


@pytest.mark.parametrize(
    "upstream, listen, cache_dir, message",
    [
        ("ftp://origin", "8081", "/var/cache/x", "--upstream"),
        ("http://origin/api/v1", "8081", "/var/cache/x", "without a path"),
        ("http://origin", "8081; evil", "/var/cache/x", "--listen"),
        ("http://origin", "8081", "relative/dir", "--cache-dir"),
    ],
)
def test_bad_values_are_refused_by_name(
    upstream: str, listen: str, cache_dir: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        render(CacheConfig(upstream, listen, Path(cache_dir)))
