"""The independent tools fieldkit is checked against (smpmgr, MCUboot's imgtool), from their own venv.

``make test`` builds ``.venv-peers`` (scripts/bootstrap-peer-tools.sh). Without it a test that needs one
is skipped, except in CI (FIELDKIT_REQUIRE_PEERS), where it fails: those tests are the proof that fieldkit
speaks the real protocols, not only to its own simulator.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PEERS_BIN = Path(__file__).resolve().parents[2] / ".venv-peers" / "bin"


def peer_tool(name: str) -> Path:
    path = PEERS_BIN / name
    if not path.exists():
        reason = f"{name} is not installed in {PEERS_BIN.parent} (make test installs it)"
        if os.environ.get("FIELDKIT_REQUIRE_PEERS"):
            raise RuntimeError(f"FIELDKIT_REQUIRE_PEERS is set but {reason}")
        pytest.skip(reason)
    return path
