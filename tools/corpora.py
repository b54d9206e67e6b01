"""Where the public corpora are (real text for tests and benchmarks): `FM_SHARED_CORPORA`, else `shared/corpora`
beside the repository. Users clone the project without them; nothing in `fm_pipeline/` reads them."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_CORPORA = Path(os.environ.get("FM_SHARED_CORPORA") or REPO_ROOT.parent / "shared" / "corpora")
