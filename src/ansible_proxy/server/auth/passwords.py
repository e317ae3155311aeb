"""People's passwords: argon2id hashes (argon2-cffi, its default parameters: 64 MiB and
3 passes per hash), and the one-time passwords an admin hands out. The one module that
imports argon2.

A password is never logged, never stored in clear and never shown again: `users add` and
`users reset-password` print a one-time password once, and the dashboard asks the person
for their own before anything else (db/team.User.must_change).
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
MAX_LENGTH = 256  # argon2 takes any length; a megabyte "password" would only cost CPU
_hasher = PasswordHasher()
# Verified when the name is unknown, so that a wrong name costs as long as a wrong password.
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify(stored: str | None, given: str) -> bool:
    """True when `given` is the password `stored` is the hash of; as slow for no hash."""
    if not given or len(given) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(stored or _DUMMY, given) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def one_time_password() -> str:
    """What `users add` prints once: 20 characters from a 120-bit secret."""
    return secrets.token_urlsafe(15)


def refusal(name: str, password: str) -> str | None:
    """Why a person's new password is refused (None: taken)."""
    if len(password) < MIN_LENGTH:
        return f"a password needs at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"a password may have at most {MAX_LENGTH} characters"
    if name.lower() in password.lower():
        return "a password may not contain the person's name"
    return None
