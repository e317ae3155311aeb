"""Artifact responses: streamed from disk with Content-Length, ETag, Range and caching.

Starlette's FileResponse already answers Range (206), unsatisfiable ranges (416) and
If-Range; this adds the sha256 ETag, If-None-Match (304) and the cache policy.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.responses import FileResponse, MalformedRangeHeader, Response

from ansible_proxy.server.problems import NotFound

IMMUTABLE = "public, max-age=31536000, immutable"
NOT_CACHEABLE = "no-store"


class ArtifactResponse(FileResponse):
    """A FileResponse with larger reads; a malformed Range is ignored (RFC 9110), not 400."""

    chunk_size = 1024 * 1024

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        try:
            return super()._parse_range_header(http_range, file_size)
        except MalformedRangeHeader:
            return []  # Starlette then sends the whole file with 200


def artifact_response(
    path: Path, sha256: str, filename: str, immutable: bool, if_none_match: str | None
) -> Response:
    """The file at `path` (content `sha256`) with the cache policy of the URL it came from."""
    etag = f'"{sha256}"'
    cache_control = IMMUTABLE if immutable else NOT_CACHEABLE
    if if_none_match is not None and etag in [tag.strip() for tag in if_none_match.split(",")]:
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache_control})
    try:
        stat_result = os.stat(path)
    except FileNotFoundError:
        raise NotFound(f"the artifact {sha256} is missing from the store") from None
    return ArtifactResponse(
        path,
        stat_result=stat_result,
        media_type="application/octet-stream",
        filename=filename,
        headers={"ETag": etag, "Cache-Control": cache_control},
    )


def accel_response(
    prefix: str, sha256: str, filename: str, immutable: bool, if_none_match: str | None
) -> Response:
    """An empty answer telling nginx to send `<prefix><sha[:2]>/<sha>` itself (X-Accel)."""
    etag = f'"{sha256}"'
    cache_control = IMMUTABLE if immutable else NOT_CACHEABLE
    headers = {"ETag": etag, "Cache-Control": cache_control}
    if if_none_match is not None and etag in [tag.strip() for tag in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    headers["X-Accel-Redirect"] = f"{prefix.rstrip('/')}/{sha256[:2]}/{sha256}"
    headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return Response(media_type="application/octet-stream", headers=headers)
