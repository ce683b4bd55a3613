"""Runs the simulated charger's programs, each in a process of its own, forked from a warm interpreter.

A real charger's ``rauc status`` answers in milliseconds. Starting Python
and importing the simulator for every command (what the shims do under a
real sshd) costs ~45 ms, which dominated every exchange with the
simulator's own SSH endpoint: a whole update runs about ten commands.

So the endpoint starts one helper process that has the simulator imported
already and forks it once per command. Each command still runs in its own
process, so a power cut (status 137, ``os._exit``) ends just that process
mid-write, as under the shims, and a hung command can be killed.

The wire, over AF_UNIX sockets on one machine:

- control: the endpoint sends a JSON request (program, args, state
  directory, faults) with one end of a fresh socketpair attached
  (SCM_RIGHTS); an empty message or a closed control socket stops the helper.
- answer (on the socketpair): a line ``{"pid": N}`` as soon as the command
  runs, then a line ``{"status": S, "stdout": ..., "stderr": ...}``; a power
  cut closes it after the first line.

Run as ``python -m fieldkit.simulator.forkserver FD`` with the control socket
inherited as FD.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import traceback
from typing import Any, Final, TypeAlias

from fieldkit.simulator.shell import FAULTS_ENV, POWER_CUT_STATUS, STATE_ENV, execute

CommandOutcome: TypeAlias = tuple[int, bytes, bytes]  # exit status, stdout, stderr
MAX_REQUEST_BYTES: Final = 64 * 1024


class ProgramRunner:
    """The endpoint's side: starts the helper and runs one program call at a time per caller thread."""

    def __init__(self) -> None:
        self._control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self._helper = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", __name__, str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                # Nothing inherited that a caller might read to the end: a hung command outlives the endpoint.
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        self._lock = threading.Lock()  # one request on the control socket at a time

    def run(self, state_dir: str, faults: str, words: list[str], timeout_s: float) -> CommandOutcome | None:
        """Run ``words`` on the charger; None when it hung past ``timeout_s`` or could not start."""
        request = json.dumps({"program": words[0], "args": words[1:], "state": state_dir, "faults": faults})
        ours, theirs = socket.socketpair()
        with ours:
            try:
                with self._lock, theirs:
                    socket.send_fds(self._control, [request.encode()], [theirs.fileno()])
            except OSError:
                return None  # the helper is gone (the endpoint is stopping)
            ours.settimeout(timeout_s)
            pid = None
            with ours.makefile("rb") as answer:
                try:
                    pid = int(json.loads(answer.readline())["pid"])
                    line = answer.readline()
                except TimeoutError:
                    if pid is not None:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)  # a hung charger: nothing more will come
                    return None
                except (ValueError, KeyError, OSError):
                    return None
        if not line:
            return POWER_CUT_STATUS, b"", b""  # the process ended without answering: the power went
        result = json.loads(line)
        return int(result["status"]), result["stdout"].encode(), result["stderr"].encode()

    def stop(self) -> None:
        self._control.close()  # the helper sees the control socket close and ends
        try:
            self._helper.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._helper.kill()
            self._helper.wait()


def _answer_one(connection: socket.socket, request: dict[str, Any]) -> None:
    """In the forked child: run one program and write its pid, then its outcome, to ``connection``."""
    answer = connection.makefile("wb", buffering=0)
    answer.write(json.dumps({"pid": os.getpid()}).encode() + b"\n")
    os.environ[STATE_ENV], os.environ[FAULTS_ENV] = str(request["state"]), str(request["faults"])
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            status = execute(str(request["program"]), [str(a) for a in request["args"]])
        except Exception:  # a simulator bug: say so, as a crashing program would
            traceback.print_exc()
            status = 1
    result = {"status": status, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}
    answer.write(json.dumps(result).encode() + b"\n")


def serve(control: socket.socket) -> None:
    """The helper: fork a child per request until the control socket closes."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel; nobody waits on them
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, MAX_REQUEST_BYTES, 1)
        except OSError:
            return
        if not message or not fds:
            return
        connection = socket.socket(fileno=fds[0])
        if os.fork() == 0:
            status = 1
            try:
                control.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                _answer_one(connection, json.loads(message))
                status = 0
            finally:
                os._exit(status)  # never return into the helper's loop
        connection.close()


if __name__ == "__main__":
    serve(socket.socket(fileno=int(sys.argv[1])))
