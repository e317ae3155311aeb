"""The results a `history` records per sha256, in a host's manifest and the cluster state.

"" the attempt is under way (a crash left it so), "ok" installed and healthy, "err"
failed and rolled back: never installed again automatically. The original design's values.
"""

from __future__ import annotations

OK = "ok"
ERR = "err"
PENDING = ""
