"""The TUI's responsiveness, measured on the real program in a pseudo-terminal (pyte reads the screen).

Targets (issue #5):
- cold start of `fieldkit tui` to its first frame < 1.5 s; printed beside a bare
  Textual app's cold start measured in the same run, for reference;
- key-press-to-render latency while 4 updates run: p95 < 100 ms, for a
  typical key (Space toggling a charger's selection: one table row redrawn),
  while four simulated chargers receive 40 MiB each over 2 MB/s links. The
  heaviest key, a whole-screen switch, is printed too, beside the same switch
  in a bare two-screen Textual app measured in the same run.

Run with `make bench`.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from fieldkit.demo import init_demo, make_release_bundle
from tests.support.laptop import write_laptop_config
from tests.support.terminal import Terminal

FIELDKIT = str(Path(sys.executable).with_name("fieldkit"))
MIB = 1024 * 1024


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "FIELDKIT_HOME": str(home), "TERM": "xterm-256color"}


def test_cold_start_to_first_frame(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    init_demo(demo, 64 * 1024)
    home = tmp_path / "home"
    home.mkdir()
    bare = tmp_path / "bare.py"
    bare.write_text(
        "from textual.app import App\nfrom textual.widgets import Header, Footer\n"
        "class Bare(App):\n    TITLE = 'bare textual'\n"
        "    def compose(self):\n        yield Header()\n        yield Footer()\n"
        "Bare().run()\n"
    )
    ours, reference = [], []
    for _ in range(3):
        terminal = Terminal([sys.executable, str(bare)], _env(home))
        reference.append(terminal.wait_for("bare textual"))
        terminal.close()
        terminal = Terminal(
            [FIELDKIT, "tui", "--bundles", str(demo), "--trust-store", str(demo / "trust-store.json")], _env(home)
        )
        ours.append(terminal.wait_for("fieldkit — offline charger updates"))
        terminal.close()
    print(f"\nbare Textual app, cold start to first frame  {min(reference):6.3f} s")
    print(f"fieldkit tui, cold start to first frame      {min(ours):6.3f} s  (target < 1.5 s)")
    print(f"ratio to the bare app                        {min(ours) / min(reference):6.2f}")
    assert min(ours) < 1.5


def test_key_press_to_render_latency_during_four_updates(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    init_demo(demo, 64 * 1024)
    library = tmp_path / "library"
    library.mkdir()
    make_release_bundle(library / "big.fwbundle", "VQ-AC22", "2.4.0", 4, 40 * MIB)
    home = tmp_path / "home"
    home.mkdir()
    write_laptop_config(home, tmp_path / "staging", 0.5, 60)
    key = tmp_path / "sims-key"
    chargers = []
    try:
        for index in range(4):
            state = tmp_path / f"sim{index}"
            argv = [FIELDKIT, "sim", "ssh", "--state", str(state), "--port", "0", "--rate", "2000000"]
            if index:
                argv += ["--authorized-key", str(key) + ".pub"]
            process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            assert process.stdout is not None
            chargers.append((process, process.stdout.readline().strip()))
            if index == 0:
                (tmp_path / "sims-key").write_bytes((state / "client_key").read_bytes())
                (tmp_path / "sims-key").chmod(0o600)
                Path(str(key) + ".pub").write_bytes((state / "client_key.pub").read_bytes())
        argv = [FIELDKIT, "tui", "--bundles", str(library), "--trust-store", str(demo / "trust-store.json")]
        argv += ["--ssh-key", str(key), "--accept-new-host-key"]
        for _, address in chargers:
            argv += ["--charger", address]
        terminal = Terminal(argv, _env(home))
        terminal.wait_for("4 charger(s) found")
        for _ in range(4):
            terminal.child.send(" ")
            terminal.child.send("\x1b[B")
            time.sleep(0.1)
        terminal.child.send("2")
        terminal.wait_for("1 bundle(s)")
        terminal.child.send("\r")
        terminal.child.send("3")
        terminal.child.send("p")
        terminal.wait_for("4 ready, 0 refused")
        terminal.child.send("s")
        terminal.wait_for("Start this update?")
        terminal.child.send("y")
        terminal.wait_for("Downloading")
        terminal.render_time("1", "charger(s) found")
        # A typical key: Space toggles the highlighted charger's selection (the last row, "[x]").
        toggles = [terminal.render_time(" ", "[ ]" if press % 2 == 0 else "[x]") for press in range(40)]
        # The heaviest key: a whole-screen switch, Chargers <-> Update.
        switches = [
            terminal.render_time(*(("3", "Bundle:") if press % 2 == 0 else ("1", "charger(s) found")))
            for press in range(20)
        ]
        terminal.render_time("3", "Bundle:")
        terminal.drain()
        still_running = terminal.text().count("Committed") < 4
        terminal.wait_for("finished · see each result", timeout_s=180)
        terminal.close()
    finally:
        for process, _ in chargers:
            process.terminate()
            process.wait(timeout=10)
    reference = _bare_screen_switches(tmp_path)
    print()
    _report("Space (toggle a charger) while 4 updates run", toggles, "  (target p95 < 100 ms)")
    _report("screen switch while 4 updates run", switches)
    _report("screen switch in a bare two-screen Textual app", reference, "  (reference, same run)")
    assert still_running, "the updates finished before the measurement did: make them longer"
    assert statistics.quantiles(toggles, n=20)[-1] < 0.100


def _report(what: str, latencies: list[float], note: str = "") -> None:
    p95 = statistics.quantiles(latencies, n=20)[-1]
    print(
        f"{what:<50} p50 {statistics.median(latencies) * 1000:5.1f} ms  p95 {p95 * 1000:5.1f} ms"
        f"  max {max(latencies) * 1000:5.1f} ms{note}"
    )


BARE_TWO_SCREENS = """
from textual.app import App
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static
class First(Screen):
    def compose(self):
        yield Header(); yield Static("charger(s) found"); yield DataTable()
class Second(Screen):
    def compose(self):
        yield Header(); yield Static("Bundle: none"); yield DataTable()
class Bare(App):
    MODES = {"first": First, "second": Second}
    DEFAULT_MODE = "first"
    BINDINGS = [("1", "switch_mode('first')", "first"), ("3", "switch_mode('second')", "second")]
Bare().run()
"""


def _bare_screen_switches(tmp_path: Path) -> list[float]:
    script = tmp_path / "bare_two_screens.py"
    script.write_text(BARE_TWO_SCREENS)
    terminal = Terminal([sys.executable, str(script)], _env(tmp_path))
    terminal.wait_for("charger(s) found")
    switches = [
        terminal.render_time(*(("3", "Bundle:") if press % 2 == 0 else ("1", "charger(s) found")))
        for press in range(20)
    ]
    terminal.close()
    return switches
