"""A TCP proxy on loopback that misbehaves on purpose: slow links, lost responses.

It sees only TLS records, so it recognises a batch upload by its volume: more
than ``BATCH_UPLOAD_BYTES`` from the client since the server last spoke means
the server's next bytes answer a batch.

Threads and blocking sockets, bounded: every socket has a timeout and the
proxy stops when closed.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Final

BUFFER: Final = 16384
BATCH_UPLOAD_BYTES: Final = 20_000


class _LoopbackProxy:
    """Listens on a free loopback port and hands each client to ``_serve`` in a thread, until closed."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(0.2)
        self.port: int = self.listener.getsockname()[1]
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
        self.listener.close()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
        except OSError:
            client.close()
            return
        self._serve(client, upstream)

    def _serve(self, client: socket.socket, upstream: socket.socket) -> None:
        raise NotImplementedError


class FaultyProxy(_LoopbackProxy):
    def __init__(self, target_port: int) -> None:
        # Set before the listener starts: a client may arrive at once.
        self.rate_bytes_per_s: float | None = None  # client -> server throttle
        self.drop_next_batch_response = False
        self.dropped_responses = 0
        super().__init__(target_port)

    def _serve(self, client: socket.socket, upstream: socket.socket) -> None:
        for s in (client, upstream):
            s.settimeout(30)
        state = {"uploaded": 0}
        up = threading.Thread(target=self._pump_up, args=(client, upstream, state), daemon=True)
        up.start()
        self._pump_down(upstream, client, state)
        up.join(timeout=5)

    def _pump_up(self, client: socket.socket, upstream: socket.socket, state: dict[str, int]) -> None:
        try:
            while not self._closed.is_set():
                data = client.recv(BUFFER)
                if not data:
                    break
                state["uploaded"] += len(data)
                if self.rate_bytes_per_s:
                    time.sleep(len(data) / self.rate_bytes_per_s)
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            _shutdown(upstream)

    def _pump_down(self, upstream: socket.socket, client: socket.socket, state: dict[str, int]) -> None:
        try:
            while not self._closed.is_set():
                data = upstream.recv(BUFFER)
                if not data:
                    break
                if state["uploaded"] > BATCH_UPLOAD_BYTES and self.drop_next_batch_response:
                    # The server has answered (so it committed); the laptop never hears it.
                    self.drop_next_batch_response = False
                    self.dropped_responses += 1
                    break
                state["uploaded"] = 0
                client.sendall(data)
        except OSError:
            pass
        finally:
            _shutdown(client)
            upstream.close()
            client.close()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class LatencyProxy(_LoopbackProxy):
    """A TCP proxy on loopback that delays every byte by ``one_way_s`` in each direction: a field link's RTT.

    Order is kept and throughput is not limited, so what a window-bound protocol loses to the round trip
    shows as it would on a real link. Bounded: sockets time out, and ``close`` stops it.
    """

    def __init__(self, target_port: int, one_way_s: float) -> None:
        self.one_way_s = one_way_s
        super().__init__(target_port)

    def _serve(self, client: socket.socket, upstream: socket.socket) -> None:
        for a, b in ((client, upstream), (upstream, client)):
            a.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            queue: deque[tuple[float, bytes]] = deque()
            ready = threading.Condition()
            threading.Thread(target=self._read, args=(a, queue, ready), daemon=True).start()
            threading.Thread(target=self._deliver, args=(b, queue, ready), daemon=True).start()

    def _read(self, source: socket.socket, queue: deque[tuple[float, bytes]], ready: threading.Condition) -> None:
        source.settimeout(0.5)
        while not self._closed.is_set():
            try:
                data = source.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                data = b""
            with ready:
                queue.append((time.monotonic() + self.one_way_s, data))
                ready.notify()
            if not data:
                return

    def _deliver(self, sink: socket.socket, queue: deque[tuple[float, bytes]], ready: threading.Condition) -> None:
        while not self._closed.is_set():
            with ready:
                while not queue and not self._closed.is_set():
                    ready.wait(0.5)
                if not queue:
                    break
                due, data = queue.popleft()
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # the link's propagation delay: this is what the proxy is for
            if not data:
                break
            try:
                sink.sendall(data)
            except OSError:
                break
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)  # half-close: the other direction may still be talking


class LatencyProxyProcess:
    """A LatencyProxy in a process of its own: in the measuring process it would take the GIL from the client.

    Benchmarks use this one, so the proxy costs fieldkit (a Python client) no more than it costs `scp`.
    Stops when closed, or when the process that started it goes away (its stdin closes).
    """

    def __init__(self, target_port: int, one_way_s: float) -> None:
        code = (
            "import sys; from tests.support.netfault import LatencyProxy; "
            f"p = LatencyProxy({target_port}, {one_way_s!r}); print(p.port, flush=True); sys.stdin.read(); p.close()"
        )
        root = Path(__file__).resolve().parents[2]
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=root
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            self.close()
            raise RuntimeError("the latency proxy process did not start")
        self.port = int(line)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
