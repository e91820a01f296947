#!/usr/bin/env bash
# Install a built collection tarball into an empty temporary collections path and check that ansible
# finds and documents every module from that copy alone (no checkout, no PYTHONPATH).
#
#   scripts/check-install.sh TARBALL NAMESPACE.NAME
set -euo pipefail

tarball=$(realpath "${1:?usage: check-install.sh TARBALL NAMESPACE.NAME}")
collection=${2:?usage: check-install.sh TARBALL NAMESPACE.NAME}

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT

unset PYTHONPATH
export ANSIBLE_COLLECTIONS_PATH="$workdir/collections"
# Run from the empty directory: ansible also finds a collection from the current directory.
cd "$workdir"

ansible-galaxy collection install --offline "$tarball" -p "$ANSIBLE_COLLECTIONS_PATH"
ansible-galaxy collection list "$collection" | grep -F "$collection"

modules=$(ansible-doc --list --type module "$collection" --json | python3 -c 'import json, sys; print("\n".join(sorted(json.load(sys.stdin))))')
if [ -z "$modules" ]; then
    echo "no module of $collection is visible from the installed tarball" >&2
    exit 1
fi
if ! grep -qx "$collection.security_defaults" <<<"$modules"; then
    echo "$collection.security_defaults is not visible from the installed tarball" >&2
    exit 1
fi

# ansible-doc loads each module's documentation and its doc fragments from the installed copy.
count=0
while IFS= read -r module; do
    ansible-doc --type module "$module" >/dev/null
    count=$((count + 1))
done <<<"$modules"
echo "installed $collection from $(basename "$tarball"): $count modules documented"
