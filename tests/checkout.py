# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The checkout as the collection ``m365ops.smtp_auth``, for the unit and integration harnesses.

The Makefile already makes the link and puts ``.build/collections`` on PYTHONPATH; a bare ``pytest`` run gets
the same link (``.build/collections/ansible_collections/m365ops/smtp_auth`` -> the checkout) and path here.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO / ".build" / "collections"


def ensure_collection_link() -> None:
    """Make the link (and ``sys.path`` entry) that lets Python and Ansible find the collection."""
    link = COLLECTIONS / "ansible_collections" / "m365ops" / "smtp_auth"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        try:
            link.symlink_to(Path("..") / ".." / ".." / "..", target_is_directory=True)
        except FileExistsError:  # another test process made it first
            pass
    if str(COLLECTIONS) not in sys.path:
        sys.path.insert(0, str(COLLECTIONS))
