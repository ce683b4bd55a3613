#!/usr/bin/env bash
# `make dist`: the offline wheelhouse, a runtime-only environment installed from it with no index, the SBOM
# of that environment, and the self-contained one-folder build, tarred with its checksums.
#
#   bash packaging/build-dist.sh [OUT_DIR [WORK_DIR]]     (defaults: dist, build)
#
# Needs Python 3.11+ with venv, and a package index for the build tools and the wheels (not on the laptop).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:-dist}")
WORK=$(realpath -m "${2:-build}")
PY=${PYTHON:-python3}
VERSION=$("$PY" -c 'import re, pathlib; print(re.search(r"__version__ = \"([^\"]+)\"", pathlib.Path("fieldkit/__init__.py").read_text())[1])')
ARCH=$(uname -m)
NAME="fieldkit-$VERSION-linux-$ARCH"

rm -rf "$OUT" "$WORK"
mkdir -p "$OUT" "$WORK"

echo "== wheelhouse"
"$PY" -m venv "$WORK/tools"
"$WORK/tools/bin/pip" install --quiet -r packaging/build-requirements.txt
"$WORK/tools/bin/python" packaging/build_wheelhouse.py "$OUT/wheelhouse"

echo "== runtime environment, from the wheelhouse alone"
# No pip inside: the SBOM must list what fieldkit runs on, not the installer.
"$PY" -m venv --without-pip "$WORK/runtime"
"$WORK/tools/bin/pip" --python "$WORK/runtime/bin/python" install --quiet --no-index \
  --find-links "$OUT/wheelhouse" --require-hashes -r "$OUT/wheelhouse/requirements.lock"

echo "== SBOM (CycloneDX) of the runtime environment"
"$WORK/tools/bin/cyclonedx-py" environment --output-reproducible --output-format JSON \
  --output-file "$OUT/$NAME.cdx.json" "$WORK/runtime/bin/python"

echo "== one-folder build (PyInstaller)"
# PyInstaller must run where fieldkit's dependencies are importable: the runtime environment, with the
# builder added only now, after the SBOM was taken.
"$WORK/tools/bin/pip" --python "$WORK/runtime/bin/python" install --quiet -r packaging/build-requirements.txt
"$WORK/runtime/bin/python" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath "$OUT" --workpath "$WORK/pyinstaller" packaging/fieldkit.spec

echo "== archive"
tar -C "$OUT" -czf "$OUT/$NAME.tar.gz" fieldkit
(cd "$OUT" && sha256sum "$NAME.tar.gz" "$NAME.cdx.json" wheelhouse/requirements.lock > SHA256SUMS)
echo "built $OUT/$NAME.tar.gz ($(du -sh "$OUT/fieldkit" | cut -f1) unpacked), $OUT/$NAME.cdx.json, $OUT/wheelhouse"
