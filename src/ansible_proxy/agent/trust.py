"""Signed releases on the host (docs/security.md): with TRUSTED_KEYS, what may be installed.

A release is installed only when the bin-manager serves a statement for it signed by
enough keys of TRUSTED_KEYS, for exactly this bin, this host's arch and that sha256, not
expired, and whose sequence is not below the highest this host installed for the bin
(client/verified.py checks all of it, for the cluster proxy too). The one exception is a
move back, told by the bin-manager (a staged rollout's fleet revert), to exactly the
version this host's own rollback would choose, that it verified and ran before: so a
fleet revert works with no person signing. One such step only: the next unsigned move
back waits for a signed install, so a compromised server can at most step a host back
one version the publishers signed earlier. The inspector's and the watch window's
rollbacks never come here: they go to a stored version this host verified, with no
network.

STORE_DIR/<bin>/.trust (client/verified.py) remembers the highest sequence installed,
each release verified here and an unsigned move back, written before the switch.
"""

from __future__ import annotations

from ansible_proxy.agent import plan
from ansible_proxy.agent.host import Host
from ansible_proxy.agent.manifest import ManagedBinary
from ansible_proxy.client import history
from ansible_proxy.client.verified import check_install
from ansible_proxy.signatures import Statement


def is_own_revert(entry: ManagedBinary, target: str) -> bool:
    """`target` is the version this host's own rollback would choose, and it ran well here."""
    return target == plan.rollback_target(entry) and entry.history.get(target) == history.OK


def check(host: Host, entry: ManagedBinary, target: str) -> Statement | None:
    """The trusted statement for installing `target`; None when TRUSTED_KEYS is not set or
    this is the one allowed unsigned step back. SignatureRefused with the reason otherwise."""
    trusted = host.cfg.trusted_keys
    if trusted is None:
        return None
    name = entry.binary_name
    folder = host.cfg.store_dir / name
    own = is_own_revert(entry, target)
    statement = check_install(host.api, folder, name, target, trusted, host.clock(), own)
    if statement is None:
        host.log("info", "a move back to the version verified here before: allowed", name, target)
    return statement
