"""The cluster's nginx download cache: one config rendered from a Jinja2 template.

`/api/v1/download/<bin>?sha256=…` answers are immutable, so they are cached for good
(the key includes the arguments) with `proxy_cache_lock on`: a thundering herd of nodes
makes one origin request. Latest pointers and the JSON API pass through uncached.
With `auth_request` (the default) every download, cache hit or not, is first authorized
by the bin-manager (GET /api/v1/cache/authorize with the client's Authorization), so a
cached body never reaches a client the bin-manager would refuse. An https upstream's
certificate is verified against `upstream_ca`.
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
    proxy_cache_path {{ cache_path }} levels=1:2 keys_zone=ansible_proxy:16m
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
{% if tls %}
        # The bin-manager's certificate is verified, with its name sent as SNI.
        proxy_ssl_verify on;
        proxy_ssl_trusted_certificate {{ upstream_ca }};
        proxy_ssl_verify_depth 4;
        proxy_ssl_server_name on;
        proxy_ssl_name {{ upstream_name }};
{% endif %}
{% if auth_request %}

        # Asked before every download, cached or not: the bin-manager answers 204 when it
        # would let this client download (its Authorization header is passed on), else 401.
        location = /_ansible_proxy_authorize {
            internal;
            proxy_pass {{ upstream }}/api/v1/cache/authorize;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header Connection "";
            proxy_set_header Host {{ upstream_host }};
            proxy_set_header X-Original-URI $request_uri;
            proxy_cache off;
        }
{% endif %}

        # Exact content by sha256: immutable, cached for good, one origin fetch per key.
        location /api/v1/download/ {
{% if auth_request %}
            auth_request /_ansible_proxy_authorize;
{% endif %}
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

# Debian's bundle of the system's trusted CAs (ca-certificates).
SYSTEM_CA = Path("/etc/ssl/certs/ca-certificates.crt")
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
    auth_request: bool = True
    upstream_ca: Path = SYSTEM_CA


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
    if not config.upstream_ca.is_absolute() or any(c in str(config.upstream_ca) for c in " ;{}"):
        raise ConfigError(f"--upstream-ca must be an absolute path: {config.upstream_ca}")
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
        upstream_name=_host_of(match.group(2)),
        tls=match.group(1) == "https",
        upstream_ca=str(config.upstream_ca),
        auth_request=config.auth_request,
        listen=config.listen,
        cache_dir=str(config.cache_dir),
        cache_path=str(cache_path(config)),
        max_size=config.max_size,
        standalone=config.standalone,
    )


def cache_path(config: CacheConfig) -> Path:
    """Where nginx keeps cached bodies: `--cache-dir` itself for an include (nginx creates
    it, owned by its worker user, mode 0700, when its parent exists), `cache/` inside it
    for a standalone config (which keeps its pid, logs and temp files beside it)."""
    return config.cache_dir / "cache" if config.standalone else config.cache_dir


def prepare_dirs(cache_dir: Path, standalone: bool = True) -> None:
    """Create what the config needs before nginx starts: for an include, the cache dir's
    parent (nginx makes the cache dir itself and gives it to its workers); for a
    standalone config, its cache and temp dirs."""
    if not standalone:
        cache_dir.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        return
    for sub in ("cache", "tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
        (cache_dir / sub).mkdir(parents=True, exist_ok=True)


def _host_of(netloc: str) -> str:
    """The host of `host[:port]` or `[v6]:port`, as the certificate names it."""
    if netloc.startswith("["):
        return netloc[1 : netloc.index("]")]
    return netloc.rsplit(":", 1)[0] if ":" in netloc else netloc
