"""Whose failure a `failed` progress report tells (its `cause`, docs/api.md): decided here
for every failure path of the agent, the inspector and the cluster proxy.

- "release": the release failed on this host: it did not start or stay up in the watch
  window, failed its port, image or health checks, its self-test, its playbook, or the
  inspector's verdict; its package or image archive is not what a release must be.
- "host": this host could not try it: a download stalled, failed or was not the release,
  STORE_DIR or the engine's store full, a registry or supervisord unreachable, ssh-keygen
  missing or hung, a signature expired only by this host's clock, SIGTERM mid-upgrade, a
  self-test that did not finish (exit 75, no answer), a configuration of this host's, a
  fault of ours.
- "refused": this host refused it: a signature it does not trust, a release it holds as
  bad (history "err").

A server of the original design ignores the field; this project's bin-manager counts only
"release" against a release.
"""

from __future__ import annotations

from ansible_proxy.errors import (
    AnsibleProxyError,
    ConfigError,
    DeployError,
    HostFault,
    RetryableError,
)
from ansible_proxy.signatures import SignatureRefused, SignatureUnchecked

RELEASE = "release"
HOST = "host"
REFUSED = "refused"
CAUSES = (RELEASE, HOST, REFUSED)

# The failures that are no exception: a judgement of the release, or a refusal of it.
INSPECTOR_VERDICT = RELEASE  # the inspector rolled it back: unhealthy after CHECK_FAILURES
PLAYBOOK_OR_HEALTH = RELEASE  # the cluster proxy: its playbook or health check failed
KNOWN_BAD = REFUSED  # this host holds the release as bad (`ansible-proxy forget` clears it)


def cause_of(exc: BaseException) -> str:
    """The cause of a failure raised as `exc`. An error of ours raised `from` another of
    ours takes that one's cause: an image that did not load because the disk is full is
    the host's, though it is reported as the image's."""
    if isinstance(exc.__cause__, AnsibleProxyError):
        return cause_of(exc.__cause__)
    if isinstance(exc, SignatureUnchecked):
        return HOST
    if isinstance(exc, SignatureRefused):
        return REFUSED
    if isinstance(exc, (HostFault, ConfigError, RetryableError)):
        return HOST
    if isinstance(exc, DeployError):
        return RELEASE
    # SIGTERM (SystemExit), KeyboardInterrupt, an OSError, a fault of ours: never the
    # release's doing, which only a check of it can show.
    return HOST
