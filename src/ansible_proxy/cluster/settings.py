"""What one cluster run needs: the agent's keys plus the cluster flags, and its HTTP client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ansible_proxy.client.api import make_client
from ansible_proxy.client.transport import Client
from ansible_proxy.cluster.packages import Limits
from ansible_proxy.signatures import TrustedKeys


@dataclass(frozen=True)
class ClusterSettings:
    """Everything one cluster tick needs (from the agent's keys plus the cluster flags)."""

    api: str
    download_base_url: str
    token: str
    ca_bundle: Path | None
    insecure: bool
    http_timeout: float
    lock_dir: Path
    lock_timeout: int
    max_download_bytes: int
    inventory: Path
    manifests: Path
    work_dir: Path
    limits: Limits = field(default_factory=Limits)
    trusted_keys: TrustedKeys | None = None  # TRUSTED_KEYS: packages must be signed

    @property
    def state_path(self) -> Path:
        return self.work_dir / "cluster-state.json"

    def __repr__(self) -> str:  # keep the token out of tracebacks
        return f"ClusterSettings(api={self.api!r}, inventory={str(self.inventory)!r}, ...)"


@contextmanager
def api_client(settings: ClusterSettings) -> Iterator[Client]:
    urls = [settings.api, settings.download_base_url]
    with make_client(
        urls, settings.token, settings.ca_bundle, settings.insecure, settings.http_timeout
    ) as client:
        yield client
