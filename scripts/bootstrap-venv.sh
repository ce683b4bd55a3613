#!/usr/bin/env bash
# Create .venv with a Python >= 3.11 and install fieldkit with its dev tools.
# On a fresh Debian the venv module may lack ensurepip (package python3-venv);
# as root we install it, otherwise we say exactly what to do.
set -euo pipefail
venv=${1:-.venv}
py=""
for candidate in python3.13 python3.12 python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    py=$(command -v "$candidate"); break
  fi
done
if [ -z "$py" ]; then
  echo "bootstrap: no Python 3.11 or newer found — install python3 (>= 3.11) and run make again" >&2
  exit 1
fi
if ! "$py" -m venv "$venv" >/dev/null 2>&1; then
  rm -rf "$venv"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing python3-venv (ensurepip is missing)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    "$py" -m venv "$venv"
  else
    echo "bootstrap: '$py -m venv' failed — install python3-venv (sudo apt-get install python3-venv) and run make again" >&2
    exit 1
  fi
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e '.[dev]'
# Byte-compile fieldkit as a wheel install would: with PYTHONDONTWRITEBYTECODE set,
# import never writes .pyc files and every start would recompile the sources.
"$venv/bin/python" -m compileall -q fieldkit >/dev/null
