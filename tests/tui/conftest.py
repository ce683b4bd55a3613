"""A site for TUI tests: a laptop home with an identity, the demo bundle library, simulated chargers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fieldkit.audit.identity import init_identity
from fieldkit.config import Settings
from fieldkit.demo import init_demo
from fieldkit.tui.app import FieldkitApp
from fieldkit.tui.services import AuditService, TuiContext
from fieldkit.updates.journal import Journal
from fieldkit.updates.service import UpdateService
from tests.support.simssh import RunningSim, running_sim

PASSPHRASE = "technician passphrase"


@dataclass
class TuiSite:
    home: Path
    demo: Path
    key: Path
    sims: list[RunningSim]
    settings: Settings

    def app(self, targets: list[str] | None = None) -> FieldkitApp:
        bench = UpdateService(
            self.settings,
            self.demo / "trust-store.json",
            self.demo,
            self.key,
            accept_new_host_key=True,
            journal=Journal(self.home / "data" / "jobs"),
        )
        addresses = targets if targets is not None else [s.address for s in self.sims]
        return FieldkitApp(TuiContext(bench, AuditService(bench), addresses))


@pytest.fixture(scope="session")
def demo_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("demo-library")
    init_demo(directory, 128 * 1024)
    return directory


@contextlib.contextmanager
def tui_site(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    demo_library: Path,
    chargers: list[tuple[str, str, tuple[str, ...]]],
) -> Iterator[TuiSite]:
    """``chargers``: (model, serial, faults) per simulated charger."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("FIELDKIT_HOME", str(home))
    (home / "pass").write_text(PASSPHRASE + "\n")
    monkeypatch.setenv("FIELDKIT_PASSPHRASE_FILE", str(home / "pass"))
    init_identity("T-7", "Tess Technician", "Depot 4", PASSPHRASE.encode())
    settings = Settings(health_stable_s=0.3, health_timeout_s=6, ssh_staging_dir=str(tmp_path / "staging"))
    key = tmp_path / "client_key"
    with contextlib.ExitStack() as stack:
        sims = [
            stack.enter_context(running_sim(tmp_path / serial, model, faults, serial, client_key=key))
            for model, serial, faults in chargers
        ]
        yield TuiSite(home, demo_library, key, sims, settings)
