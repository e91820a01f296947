#!/usr/bin/env bash
# Print the absolute path of a working Python interpreter of the given version (e.g. 3.12), or nothing.
#
# A pyenv shim named python3.12 can exist on PATH yet refuse to run when that version is not the
# active one, so a candidate only counts when it actually starts and reports the right version.
set -uo pipefail

version=${1:?usage: find-python.sh MAJOR.MINOR}

works() {
    "$1" -c "import sys; assert '%d.%d' % sys.version_info[:2] == '$version'; print(sys.executable)" 2>/dev/null
}

candidates=("python$version")
if command -v pyenv >/dev/null 2>&1; then
    pyenv_root=$(pyenv root 2>/dev/null || true)
    if [ -n "$pyenv_root" ]; then
        # Newest patch release first.
        while IFS= read -r dir; do
            candidates+=("$dir/bin/python$version")
        done < <(ls -d "$pyenv_root/versions/$version".* 2>/dev/null | sort -t. -k3,3nr)
    fi
fi

for candidate in "${candidates[@]}"; do
    if works "$candidate"; then
        exit 0
    fi
done
exit 0
