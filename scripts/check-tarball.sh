#!/usr/bin/env bash
# Fail when the collection tarball carries something that must not ship (see build_ignore in galaxy.yml).
set -euo pipefail

tarball=${1:?usage: check-tarball.sh TARBALL}

# Top-level entries that belong to development only, plus anything from virtualenvs or test output.
unwanted='^(\./)?(emulator|benchmarks|scripts|\.ci|\.build|\.venv[^/]*|\.git[^/]*|\.pytest_cache|\.emulator|reports)(/|$)|^(\./)?Makefile$|^(\./)?tests/output(/|$)|__pycache__|\.pyc$|\.tar\.gz$'

found=$(tar -tzf "$tarball" | grep -E "$unwanted" || true)
if [ -n "$found" ]; then
    echo "$tarball contains files that must not ship (extend build_ignore in galaxy.yml):" >&2
    sed -n 1,20p <<<"$found" >&2
    exit 1
fi
echo "$tarball: $(tar -tzf "$tarball" | wc -l) entries, no development files"
