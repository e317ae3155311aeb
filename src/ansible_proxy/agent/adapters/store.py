"""The local store: every version at STORE_DIR/{bin}/{sha256}, re-verified before use.

Beside an image release, `{sha256}.image` records the image ID it was verified to be.
Also owns the state file (STORE_DIR/.state.json): the latest sha seen per bin, the
known-bad shas already logged, and a stat cache so a no-op tick need not re-hash
every binary in BIN_DIR.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any

from ansible_proxy.client.files import fsync_dir, replace_with_copy, sha256_file, write_atomic
from ansible_proxy.names import is_sha256

_IMAGE_ID_RE = re.compile(r"sha256:[0-9a-f]{64}")


class Store:
    """Content-addressed copies of every binary version this host ever handled."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, bin_name: str, sha: str) -> Path:
        return self.root / bin_name / sha

    def part_path(self, bin_name: str, sha: str) -> Path:
        return self.root / bin_name / f".{sha}.part"

    def has(self, bin_name: str, sha: str) -> bool:
        """True when the stored copy exists and still hashes to `sha`."""
        return sha256_file(self.path(bin_name, sha)) == sha

    def image_id(self, bin_name: str, sha: str) -> str:
        """The image ID recorded when release `sha` (an image) was verified and loaded
        (STORE_DIR/{bin}/{sha256}.image); "" when there is none."""
        try:
            text = self._image_record(bin_name, sha).read_text("ascii").strip()
        except (OSError, UnicodeDecodeError):
            return ""
        return text if _IMAGE_ID_RE.fullmatch(text) else ""

    def record_image_id(self, bin_name: str, sha: str, image_id: str) -> None:
        """Record, atomically, that release `sha` is the image `image_id` (adapters/engine.py)."""
        if self.image_id(bin_name, sha) != image_id:
            self.prepare(bin_name)
            record = f"{image_id}\n".encode()
            write_atomic(self._image_record(bin_name, sha), record, mode=0o644)

    def _image_record(self, bin_name: str, sha: str) -> Path:
        return self.root / bin_name / f"{sha}.image"

    def prepare(self, bin_name: str) -> None:
        (self.root / bin_name).mkdir(parents=True, exist_ok=True)

    def adopt(self, bin_name: str, sha: str, part: Path) -> Path:
        """Move a verified download into the store."""
        target = self.path(bin_name, sha)
        os.replace(part, target)
        fsync_dir(target.parent)
        return target

    def prune(self, bin_name: str, needed: set[str], keep_last: int) -> list[str]:
        """Remove stored versions of a bin except `needed` and the `keep_last` newest others.

        Newest by the stored file's mtime (when it was downloaded or backed up). Partial
        downloads and anything not named by a sha256 are left alone. Returns the removed.
        """
        directory = self.root / bin_name
        try:
            with os.scandir(directory) as entries:
                stored = [
                    (e.stat().st_mtime_ns, e.name)
                    for e in entries
                    if is_sha256(e.name) and e.is_file() and e.name not in needed
                ]
        except FileNotFoundError:
            return []
        stored.sort(reverse=True)
        removed = [name for _, name in stored[keep_last:]]
        for name in removed:
            with contextlib.suppress(FileNotFoundError):
                (directory / name).unlink()
        if removed:
            fsync_dir(directory)
        return removed

    def keep(self, bin_name: str, sha: str, source: Path) -> None:
        """Store a copy of `source` (the installed binary) before it is replaced."""
        if not self.has(bin_name, sha):
            self.prepare(bin_name)
            replace_with_copy(source, self.path(bin_name, sha), 0o644, expected_sha=sha)


class State:
    """Small JSON file of things worth remembering between ticks (not the manifest)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {}
        self.dirty = False
        with contextlib.suppress(OSError, ValueError):
            loaded = json.loads(path.read_text())
            if isinstance(loaded, dict):
                self.data = loaded

    def _section(self, name: str) -> dict[str, Any]:
        section = self.data.get(name)
        if not isinstance(section, dict):
            section = self.data[name] = {}
        return section

    def set(self, section: str, key: str, value: Any) -> None:
        target = self._section(section)
        if target.get(key) != value:
            target[key] = value
            self.dirty = True

    def get(self, section: str, key: str) -> Any:
        return self._section(section).get(key)

    def file_sha(self, path: Path) -> str | None:
        """sha256 of a file, re-hashed only when its inode, size or times changed."""
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        stamp = [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        cached = self.get("files", str(path))
        if isinstance(cached, list) and cached[:4] == stamp:
            return str(cached[4])
        sha = sha256_file(path)
        if sha is not None:
            self.set("files", str(path), [*stamp, sha])
        return sha

    def save(self) -> None:
        if not self.dirty:
            return
        write_atomic(self.path, json.dumps(self.data, indent=1).encode(), mode=0o644)
        self.dirty = False
