"""Collect fieldkit and every wheel it needs into one directory, pinned by hash, for air-gapped laptops.

    python3 packaging/build_wheelhouse.py OUT_DIR

Writes OUT_DIR/*.whl and OUT_DIR/requirements.lock (`name==version --hash=sha256:...` per wheel). On the
laptop, with no network:

    python3 -m venv fieldkit-venv
    fieldkit-venv/bin/pip install --no-index --find-links OUT_DIR --require-hashes -r OUT_DIR/requirements.lock

(or simply `pip install --no-index --find-links OUT_DIR fieldkit`). The wheels are for the Python version and
platform this runs on; build the wheelhouse on the same kind of machine as the laptops.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
# With the back office's extra: the demo (and `fieldkit backoffice serve`) run from the same wheelhouse.
REQUIREMENT = f"{PROJECT}[backoffice]"


def _name_and_version(wheel: Path) -> tuple[str, str]:
    name, version = wheel.name.split("-")[:2]  # PEP 427: {distribution}-{version}(-{build})?-{tags}.whl
    return name.replace("_", "-").lower(), version


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.whl"):
        stale.unlink()
    subprocess.run(  # noqa: S603 - this interpreter's pip, fixed arguments
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(out), REQUIREMENT],
        check=True,
    )
    lines = []
    for wheel in sorted(out.glob("*.whl")):
        name, version = _name_and_version(wheel)
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        lines.append(f"{name}=={version} --hash=sha256:{digest}")
    (out / "requirements.lock").write_text(
        "# fieldkit and everything it needs, pinned by hash (packaging/build_wheelhouse.py)\n" + "\n".join(lines) + "\n"
    )
    print(f"{len(lines)} wheels in {out}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.stderr.write("usage: python3 packaging/build_wheelhouse.py OUT_DIR\n")
        raise SystemExit(2)
    raise SystemExit(main(Path(sys.argv[1])))
