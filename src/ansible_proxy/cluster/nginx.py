"""The cluster's nginx download cache: one config rendered from a Jinja2 template.

`/api/v1/download/<bin>?sha256=…` answers are immutable, so they are cached for good
(the key includes the arguments) with `proxy_cache_lock on`: a thundering herd of nodes
makes one origin request. Latest pointers and the JSON API pass through uncached.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import jinja2

from ansible_proxy.errors import ConfigError

_TEMPLATE = """\
# Rendered by `ansible-proxy cluster nginx-config`; include it from the http{} block
# (or run it whole with --standalone).
{% if standalone %}
worker_processes auto;
pid {{ cache_dir }}/nginx.pid;
error_log {{ cache_dir }}/error.log warn;
events { worker_connections 1024; }

http {
    access_log {{ cache_dir }}/access.log;
    client_body_temp_path {{ cache_dir }}/tmp/body;
    proxy_temp_path {{ cache_dir }}/tmp/proxy;
    fastcgi_temp_path {{ cache_dir }}/tmp/fastcgi;
    uwsgi_temp_path {{ cache_dir }}/tmp/uwsgi;
    scgi_temp_path {{ cache_dir }}/tmp/scgi;
{% endif %}
    map $arg_sha256 $ansible_proxy_no_cache {
        ""      1;
        default 0;
    }
    proxy_cache_path {{ cache_dir }}/cache levels=1:2 keys_zone=ansible_proxy:16m
                     max_size={{ max_size }} inactive=365d use_temp_path=off;

    server {
        listen {{ listen }};
        server_name _;
        client_max_body_size 1m;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host {{ upstream_host }};
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_read_timeout 300s;

        # Exact content by sha256: immutable, cached for good, one origin fetch per key.
        location /api/v1/download/ {
            proxy_pass {{ upstream }};
            proxy_cache ansible_proxy;
            proxy_cache_key "$uri?$args";
            # without ?sha256= it is the latest for an arch: a moving pointer, never cached
            proxy_cache_bypass $ansible_proxy_no_cache;
            proxy_no_cache $ansible_proxy_no_cache;
            proxy_cache_valid 200 365d;
            proxy_cache_lock on;
            proxy_cache_lock_timeout 600s;
            proxy_cache_lock_age 600s;
            proxy_cache_use_stale updating;
            proxy_force_ranges on;
            add_header X-Cache-Status $upstream_cache_status always;
        }

        # Latest pointers and the JSON API: always the origin's current answer.
        location / {
            proxy_pass {{ upstream }};
            proxy_cache off;
            proxy_buffering off;
        }
    }
{% if standalone %}
}
{% endif %}
"""

_LISTEN = re.compile(r"(\[[0-9a-fA-F:]+\]|[0-9A-Za-z.-]+)?:?[0-9]{1,5}")
_SIZE = re.compile(r"[0-9]+[kmgKMG]?")


@dataclass(frozen=True)
class CacheConfig:
    """What the rendered config needs: the origin, where to listen, where to cache."""

    upstream: str
    listen: str
    cache_dir: Path
    max_size: str = "10g"
    standalone: bool = False


def render(config: CacheConfig) -> str:
    """The nginx config text; raises ConfigError naming a bad value."""
    upstream = config.upstream.rstrip("/")
    match = re.fullmatch(r"(https?)://([^/\s;{}]+)(/.*)?", upstream)
    if match is None:
        raise ConfigError(f"--upstream must be http(s)://host[:port], not {config.upstream!r}")
    if match.group(3) not in (None, "", "/"):
        raise ConfigError("--upstream is the origin's base URL, without a path")
    if not _LISTEN.fullmatch(config.listen):
        raise ConfigError(f"--listen must be ADDR:PORT or PORT, not {config.listen!r}")
    if not config.cache_dir.is_absolute() or any(c in str(config.cache_dir) for c in " ;{}"):
        raise ConfigError(f"--cache-dir must be an absolute path: {config.cache_dir}")
    if not _SIZE.fullmatch(config.max_size):
        raise ConfigError(f"--max-size must look like 10g, not {config.max_size!r}")
    env = jinja2.Environment(
        autoescape=False,  # noqa: S701 (an nginx config, not HTML)
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.from_string(_TEMPLATE).render(
        upstream=upstream,
        upstream_host=match.group(2),
        listen=config.listen,
        cache_dir=str(config.cache_dir),
        max_size=config.max_size,
        standalone=config.standalone,
    )


def prepare_dirs(cache_dir: Path) -> None:
    """Create the cache and temp dirs a standalone config points at."""
    for sub in ("cache", "tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
        (cache_dir / sub).mkdir(parents=True, exist_ok=True)
