# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Compare desired and actual states and shape the results and diffs every module returns."""

from __future__ import annotations

from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import M365Error


def is_satisfied(desired, actual, satisfied_by=None):
    """True when ``actual`` meets ``desired``; ``satisfied_by`` maps a desired word to the other words that
    also meet it (per-user MFA ``enabled`` is met by ``enforced``)."""
    if desired == actual:
        return True
    return actual in (satisfied_by or {}).get(desired, ())


def setting_result(name, before, after, changed):
    """Result of a tenant-wide setting module: ``before``/``after`` are the module's state words."""
    return {
        "changed": changed,
        "before": before,
        "after": after,
        "diff": {"before": {name: before}, "after": {name: after}},
    }


def read_compare_write_setting(name, desired, read, write, check_mode):
    """Read one tenant-wide setting, and write ``desired`` only when it differs (never in check mode)."""
    before = read()
    changed = before != desired
    if changed and not check_mode:
        write(desired)
    return setting_result(name, before, desired, changed)


def item_result(identity, found=True, before=None, after=None, changed=False, failed=False, msg="", **extra):
    """One entry of a bulk module's ``results``."""
    result = {
        "identity": identity,
        "found": found,
        "before": before,
        "after": after,
        "changed": changed,
        "failed": failed,
        "msg": msg,
    }
    result.update(extra)
    return result


def bulk_diff(results):
    """``diff`` keyed by identity, holding only the items whose state was read."""
    before = {}
    after = {}
    for item in results:
        if item.get("found") and item.get("before") is not None:
            before[item["identity"]] = item["before"]
            after[item["identity"]] = item["after"] if item.get("after") is not None else item["before"]
    return {"before": before, "after": after}


def bulk_result(results, noun, tenant, diff=None, **extra):
    """The result of a bulk module: ``changed``, ``results``, ``diff`` (default ``bulk_diff``) and ``extra``;
    failed, with a message naming every failed item, when any item failed."""
    result = dict(extra, changed=any(item.get("changed") for item in results), results=results,
                  diff=bulk_diff(results) if diff is None else diff)
    failed = [item for item in results if item.get("failed")]
    if failed:
        result.update(failed=True, msg="%d of %d %s failed in tenant %s: %s" % (
            len(failed), len(results), noun, tenant,
            "; ".join("%s: %s" % (item["identity"], item.get("msg") or "failed") for item in failed)))
    return result


# Longer than any identity Exchange or Entra accepts (a UPN has at most 113 characters, an SMTP address 254).
MAX_IDENTITY_LENGTH = 256


def identity_problems(identities, option):
    """One message per identity that no mailbox or user can have, to refuse before any request."""
    problems = []
    for position, identity in enumerate(identities):
        text = str(identity)
        if not text.strip():
            problems.append("%s[%d] is empty" % (option, position))
        elif any(character in text for character in "\r\n\x00"):
            problems.append("%s[%d] %r holds a line break or NUL" % (option, position, text))
        elif len(text) > MAX_IDENTITY_LENGTH:
            problems.append("%s[%d] %s... is %d characters long, more than the %d any mailbox or user name can have"
                            % (option, position, text[:40], len(text), MAX_IDENTITY_LENGTH))
    return problems


def unique(identities, option="mailboxes", warn=None):
    """Drop repeats (case-insensitive, first spelling kept) so one mailbox is never written twice. Raises
    M365Error, before any request, naming each identity that cannot be one (empty, a line break, too long).

    A repeat is harmless to the tenant but usually a slip in the list (a copied line, the same UPN in other
    case), so ``warn`` (the module's) is told of each, naming both positions."""
    problems = identity_problems(identities, option)
    if problems:
        raise M365Error("Invalid %s: %s." % (option, "; ".join(problems)))
    seen = {}
    kept = []
    for position, identity in enumerate(identities):
        text = str(identity).strip()
        key = text.lower()
        if key in seen:
            if warn is not None:
                first, spelling = seen[key]
                warn("%s[%d] %s repeats %s[%d] %s (user principal names do not depend on case); it is read and "
                     "changed once." % (option, position, text, option, first, spelling))
            continue
        seen[key] = (position, text)
        kept.append(text)
    return kept
