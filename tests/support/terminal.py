"""A program in a pseudo-terminal (pexpect), its screen emulated (pyte) so tests read what a person sees."""

from __future__ import annotations

import time

import pexpect
import pyte

ROWS, COLUMNS = 40, 120


class Terminal:
    def __init__(self, argv: list[str], env: dict[str, str], rows: int = ROWS, columns: int = COLUMNS) -> None:
        self.screen = pyte.Screen(columns, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.child = pexpect.spawn(argv[0], argv[1:], env=env, dimensions=(rows, columns), timeout=5)

    def text(self) -> str:
        return "\n".join(self.screen.display)

    def drain(self, quiet_s: float = 0.02) -> None:
        """Read until the program has been quiet for ``quiet_s``."""
        try:
            while True:
                self.stream.feed(self.child.read_nonblocking(65536, timeout=quiet_s))
        except (pexpect.TIMEOUT, pexpect.EOF):
            return

    def wait_for(self, text: str, timeout_s: float = 60) -> float:
        """Seconds until ``text`` is on the screen; fails (showing the screen) after ``timeout_s``."""
        start = time.perf_counter()
        while text not in self.text():
            if time.perf_counter() - start > timeout_s or not self.child.isalive():
                raise AssertionError(f"{text!r} never appeared; the screen was:\n{self.text()}")
            try:
                self.stream.feed(self.child.read_nonblocking(65536, timeout=0.002))
            except pexpect.TIMEOUT:
                continue
            except pexpect.EOF:
                self.child.close()
                raise AssertionError(
                    f"{text!r} never appeared: the program ended (exit {self.child.exitstatus}, "
                    f"signal {self.child.signalstatus}); the screen was:\n{self.text()}"
                ) from None
        return time.perf_counter() - start

    def keys(self, *keys: str, pause_s: float = 0.15) -> None:
        """Type ``keys`` one by one, letting the program redraw after each."""
        for key in keys:
            self.child.send(key)
            time.sleep(pause_s)
            self.drain(0.05)

    def render_time(self, key: str, marker: str, timeout_s: float = 10) -> float:
        """Seconds from sending ``key`` until ``marker`` is written to the terminal.

        Matched in the raw output rather than through pyte: a full-screen redraw is
        ~100 KB of escape sequences that pyte takes longer to parse than the app to draw.
        """
        self.drain()
        start = time.perf_counter()
        self.child.send(key)
        seen = b""
        while marker.encode() not in seen:
            if time.perf_counter() - start > timeout_s:
                raise AssertionError(f"{marker!r} was not drawn after {key!r}")
            try:
                seen += self.child.read_nonblocking(65536, timeout=0.002)
            except pexpect.TIMEOUT:
                continue
        elapsed = time.perf_counter() - start
        self.stream.feed(seen)
        return elapsed

    def close(self) -> None:
        """Quit with q; force it if the program does not end."""
        if self.child.isalive():
            self.child.send("q")
            try:
                self.child.expect(pexpect.EOF, timeout=20)
            except pexpect.TIMEOUT:
                self.child.terminate(force=True)
