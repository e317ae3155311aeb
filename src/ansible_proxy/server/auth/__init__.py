"""Bearer tokens: the one comparison the routes and the fast path both use."""

from __future__ import annotations

import hmac

from pydantic import SecretStr


def token_ok(given: str, *accepted: SecretStr | None) -> bool:
    """True when `given` is one of the `accepted` tokens (compared in constant time)."""
    return any(
        token is not None and hmac.compare_digest(given.encode(), token.get_secret_value().encode())
        for token in accepted
    )
