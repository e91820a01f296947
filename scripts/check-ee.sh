#!/usr/bin/env bash
# Render the execution environment's build context with ansible-builder (no container is built) and check
# that it carries the collection tarball and every runtime requirement of the collection.
set -euo pipefail

tarball=${1:?usage: check-ee.sh TARBALL}
context=.build/ee-context
rm -rf "$context"
ansible-builder create -f execution-environment.yml -c "$context" --output-filename Containerfile >/dev/null

fail() { echo "execution environment: $*" >&2; exit 1; }
[ -f "$context/Containerfile" ] || fail "ansible-builder wrote no Containerfile"
cmp -s "$tarball" "$context/_build/collections/$(basename "$tarball")" \
    || fail "the build context does not carry $(basename "$tarball")"
grep -q 'm365ops-smtp_auth.tar.gz' "$context/_build/requirements.yml" \
    || fail "the galaxy requirements do not name the collection tarball"
while read -r requirement; do
    case "$requirement" in ''|'#'*) continue ;; esac
    grep -qxF "$requirement" "$context/_build/requirements.txt" \
        || fail "the build context lacks the runtime requirement $requirement"
done < requirements.txt
# Another EE that installs the collection from a collection server reads these from the tarball.
members=$(tar -tzf "$tarball")
for member in meta/execution-environment.yml requirements.txt; do
    grep -qx "\(\./\)\?$member" <<<"$members" || fail "$(basename "$tarball") lacks $member"
done
echo "execution environment: build context in $context with $(basename "$tarball") and $(grep -cv '^\s*\(#\|$\)' requirements.txt) runtime requirements"
