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

ansible-galaxy collection install --offline "$tarball" -p "$ANSIBLE_COLLECTIONS_PATH" 2>&1 \
    | { grep -v "is not part of the configured Ansible collections paths" || true; }
modules=$(ansible-doc --list --type module "$collection" --json | python3 -c 'import json, sys; print("\n".join(sorted(json.load(sys.stdin))))')
if [ -z "$modules" ]; then
    echo "no module of $collection is visible from the installed tarball" >&2
    exit 1
fi
if ! grep -qx "$collection.security_defaults" <<<"$modules"; then
    echo "$collection.security_defaults is not visible from the installed tarball" >&2
    exit 1
fi

# One ansible-doc run loads every module's documentation and doc fragments from the installed copy.
# ansible-doc only warns about a module it cannot load, so check that each one came back documented.
mapfile -t module_list <<<"$modules"
ansible-doc --type module --json "${module_list[@]}" | python3 -c '
import json
import sys

docs = json.load(sys.stdin)
broken = [name for name in sys.argv[1:] if not (docs.get(name) or {}).get("doc")]
if broken:
    sys.exit("ansible-doc could not document, from the installed tarball: " + ", ".join(broken))
' "${module_list[@]}"
echo "installed $collection from $(basename "$tarball"): ${#module_list[@]} modules documented: ${module_list[*]#"$collection".}"
