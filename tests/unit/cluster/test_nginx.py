"""The rendered nginx cache config: accepted by the real nginx, caching only ?sha256=."""

from __future__ import annotations

import pwd
import re
import shlex
import subprocess
import sys
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
        ("http://origin", "8081", "/var/cache/x;", "--cache-dir"),
    ],
)
def test_bad_values_are_refused_by_name(
    upstream: str, listen: str, cache_dir: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        render(CacheConfig(upstream, listen, Path(cache_dir)))


@pytest.mark.parametrize("to_stdout", [False, True], ids=["--output", "stdout"])
def test_the_docs_example_passes_nginx_t_before_the_cache_dir_exists(
    tmp_path: Path, to_stdout: bool
) -> None:
    """docs/cluster.md's own command, run as written but for where its files go (inside
    tmp_path) and a resolvable upstream host: then `nginx -t` on an http{} including it.
    Printed to stdout instead, nothing is created: nginx makes the cache dir itself."""
    docs = (Path(__file__).resolve().parents[3] / "docs" / "cluster.md").read_text()
    match = re.search(
        r"^(ansible-proxy cluster nginx-config --upstream https://.*?)\n(?!\s)", docs, re.M | re.S
    )
    assert match is not None
    command = match.group(1).replace("\\\n", " ")
    command = command.replace("bin-manager.example", "localhost")
    for path in ("/var/cache/ansible-proxy", "/etc/nginx/conf.d/ansible-proxy-cache.conf"):
        assert path in command
        command = command.replace(path, f"{tmp_path}{path}")
    assert not (tmp_path / "var").exists()
    (tmp_path / "etc/nginx/conf.d").mkdir(parents=True)
    argv = shlex.split(command)
    output = Path(argv[argv.index("--output") + 1])
    if to_stdout:
        del argv[argv.index("--output") : argv.index("--output") + 2]
        (tmp_path / "var/cache").mkdir(parents=True)  # as on any host
    result = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-proxy")), *argv[1:]],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    if to_stdout:
        assert not (tmp_path / "var/cache/ansible-proxy").exists()
        output.write_text(result.stdout)
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"user www-data;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        f"events {{}}\nhttp {{\n    include {tmp_path}/etc/nginx/conf.d/*.conf;\n}}\n"
    )
    # nginx -t binds the VIP: in a network namespace of its own, set up as the docs say
    # for the backup (net.ipv4.ip_nonlocal_bind = 1)
    in_netns = ["unshare", "-n", "sh", "-ec", 'sysctl -qw net.ipv4.ip_nonlocal_bind=1; exec "$@"']
    checked = subprocess.run(
        [*in_netns, "-", "/usr/sbin/nginx", "-t", "-p", str(tmp_path), "-c", str(main)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    cache = tmp_path / "var/cache/ansible-proxy"
    assert cache.is_dir()
    assert cache.stat().st_uid == pwd.getpwnam("www-data").pw_uid  # nginx gave it its workers
    assert cache.stat().st_mode & 0o777 == 0o700


def test_downloads_ask_the_bin_manager_first_unless_told_not_to(tmp_path: Path) -> None:
    text = render(CacheConfig("http://origin:8080", "8081", tmp_path))
    download = text[text.index("location /api/v1/download/") :]
    assert "auth_request /_ansible_proxy_authorize;" in download.split("}")[0]
    assert "proxy_pass http://origin:8080/api/v1/cache/authorize;" in text
    assert "internal;" in text
    plain = render(CacheConfig("http://origin:8080", "8081", tmp_path, auth_request=False))
    assert "auth_request" not in plain


def test_an_https_upstream_is_verified_with_sni(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    text = render(CacheConfig("https://bm.example:8443", "8081", tmp_path, upstream_ca=ca))
    for line in (
        "proxy_ssl_verify on;",
        f"proxy_ssl_trusted_certificate {ca};",
        "proxy_ssl_verify_depth 4;",
        "proxy_ssl_server_name on;",
        "proxy_ssl_name bm.example;",
    ):
        assert line in text
    assert "proxy_ssl" not in render(CacheConfig("http://bm.example", "8081", tmp_path))
