"""Errors the HTTP API answers with; app.py maps each to the `{code, message}` envelope.

ApiProblem            status → HTTP status and envelope code
├── BadRequest        400  malformed input (bad bin name, arch, JSON)
├── Unauthorized      401  missing or wrong bearer token
├── Forbidden         403  a valid credential that may not do this (another node's)
├── NotFound          404  unknown bin, node, release
├── Conflict          409  a release still in use, or an upload a concurrent delete removed
├── TooLarge          413  upload or request body over its configured limit
├── Unprocessable     422  a well-formed value the rules refuse (a node name)
└── Misconfigured     500  the server's own settings stop it (an unreadable TRUSTED_KEYS)
"""

from __future__ import annotations


class ApiProblem(Exception):
    """A request the server refuses, with the HTTP status and a clear message."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ApiProblem):
    status = 400


class Unauthorized(ApiProblem):
    status = 401


class Forbidden(ApiProblem):
    status = 403


class NotFound(ApiProblem):
    status = 404


class Conflict(ApiProblem):
    status = 409


class TooLarge(ApiProblem):
    status = 413


class Unprocessable(ApiProblem):
    status = 422


class Misconfigured(ApiProblem):
    status = 500
