#!/usr/bin/env bash
# Create (or update) one virtualenv with everything the tests and the demo need.
#
#   scripts/setup.sh VENV_DIR PYTHON ANSIBLE_CORE_SPEC
#
# e.g. scripts/setup.sh .venv python3 'ansible-core>=2.19,<2.20'
# Installs the collection's runtime requirements, the test tools, ansible-core and the emulator
# (editable, so emulator changes need no reinstall), then prepares ansible-test's pip bootstrap.
set -euo pipefail

venv=${1:?usage: setup.sh VENV_DIR PYTHON ANSIBLE_CORE_SPEC}
python=${2:?usage: setup.sh VENV_DIR PYTHON ANSIBLE_CORE_SPEC}
ansible_core=${3:?usage: setup.sh VENV_DIR PYTHON ANSIBLE_CORE_SPEC}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

if [ ! -f emulator/pyproject.toml ] && [ ! -f emulator/setup.py ]; then
    echo "setup: emulator/pyproject.toml is missing, so the emulator package cannot be installed." >&2
    exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
    echo "setup: creating $venv with $("$python" --version 2>&1) ($python)"
    "$python" -m venv "$venv"
fi

echo "setup: installing requirements into $venv ($ansible_core)"
# -qq: only errors, so per-package notices do not bury the stage output; `pip check` follows.
"$venv/bin/python" -m pip install -qq --disable-pip-version-check \
    -r requirements.txt \
    -r test-requirements.txt \
    "$ansible_core" \
    -e ./emulator

"$venv/bin/python" -m pip check

bash scripts/ansible-test-pip.sh "$venv"
# Captured, then cut: piping into `head` would let ansible die of a broken pipe under pipefail.
ansible_version=$("$venv/bin/ansible" --version)
echo "${ansible_version%%$'\n'*}"
