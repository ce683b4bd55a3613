"""The frozen program's entry point: fieldkit's CLI, and `-m MODULE ARGS` as the Python interpreter has it.

fieldkit starts some of its own modules as helper processes with `sys.executable -m MODULE`: the simulator's
program runner and the shims a simulated charger's shell runs. In the frozen build `sys.executable` is this
program, so it answers `-m` as the interpreter would. Only fieldkit's own modules can be run this way; the CLI
itself has no `-m` option, so nothing a technician types is taken for it.
"""

from __future__ import annotations

import runpy
import sys


def main() -> None:
    if len(sys.argv) >= 3 and sys.argv[1] == "-m":
        module = sys.argv[2]
        if module != "fieldkit" and not module.startswith("fieldkit."):
            sys.stderr.write(f"error: this program runs only fieldkit's own modules, not {module!r}\n")
            raise SystemExit(2)
        sys.argv = [sys.argv[0], *sys.argv[3:]]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return
    from fieldkit.cli.main import entry

    entry()


if __name__ == "__main__":
    main()
