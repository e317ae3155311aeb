"""The server's own tokens, which no node may take as its node token.

A node token equal to the agent token would make every legacy node's writes look like
that node's (docs/security.md "Migrating an existing fleet"); one equal to the admin,
enrolment or metrics token would give a node a name for a server secret. Enrolment and
approval refuse them (api/enrolment.py, db/credentials.check_approvable).
"""

from __future__ import annotations

from ansible_proxy.server.db.credentials import token_hash
from ansible_proxy.server.settings import Settings


def reserved_hashes(settings: Settings) -> frozenset[str]:
    """The sha256 of each token the server is configured with."""
    tokens = (
        settings.agent_token,
        settings.admin_token,
        settings.enrolment_token,
        settings.metrics_token,
    )
    return frozenset(token_hash(t.get_secret_value()) for t in tokens if t is not None)
