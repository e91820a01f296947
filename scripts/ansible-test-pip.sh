#!/usr/bin/env bash
# Make `ansible-test --venv` work without its download host.
#
#   scripts/ansible-test-pip.sh VENV_DIR
#
# Before each sanity test ansible-test bootstraps pip in a fresh virtualenv with a get-pip script it
# downloads once and caches as ~/.ansible/test/cache/get_pip_<pip version>.py. Where that host is
# unreachable we put our stand-in (scripts/get_pip_standin.py) in the cache under the pip version
# that this venv's ansible-test asks for. A real cached get-pip script is left alone.
set -euo pipefail

venv=${1:?usage: ansible-test-pip.sh VENV_DIR}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
standin="$root/scripts/get_pip_standin.py"

pip_version=$("$venv/bin/python" - <<'PYTHON'
import sys
import types

version = "%d.%d" % sys.version_info[:2]
try:
    from ansible_test._internal.python_requirements import get_venv_packages
except ImportError as error:
    sys.exit("ansible-test's pip version cannot be read from this ansible-core: %s" % error)
print(get_venv_packages(types.SimpleNamespace(version=version))["pip"])
PYTHON
)

cache_dir="$HOME/.ansible/test/cache"
target="$cache_dir/get_pip_${pip_version//./_}.py"
mkdir -p "$cache_dir"

if [ -f "$target" ] && ! grep -q 'm365ops-get-pip-standin' "$target"; then
    echo "ansible-test pip bootstrap: keeping the existing $target"
elif ! cmp -s "$standin" "$target"; then
    cp "$standin" "$target"
    echo "ansible-test pip bootstrap: pip $pip_version via ensurepip ($target)"
fi
