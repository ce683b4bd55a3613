from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.bundle_lab import BundleLab


@pytest.fixture(autouse=True)
def fieldkit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own fieldkit home: no test touches the real user's state."""
    home = tmp_path / "fieldkit-home"
    monkeypatch.setenv("FIELDKIT_HOME", str(home))
    monkeypatch.delenv("FIELDKIT_DEBUG", raising=False)
    return home


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> BundleLab:
    return BundleLab(tmp_path_factory.mktemp("lab"))
