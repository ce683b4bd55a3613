#!/usr/bin/env bash
# A venv of its own for the independent tools the tests check fieldkit against (they are not fieldkit's
# dependencies, and smpmgr pins versions of its own): smpmgr, an mcumgr SMP client, and MCUboot's imgtool.
set -euo pipefail
venv=${1:-.venv-peers}
python=${2:-.venv/bin/python}
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "smpmgr==0.19.1" "imgtool==2.5.0"
