# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

# Test files import these from module_harness; they are also reachable here for tests that import them from
# conftest.
from module_harness import ModuleFailed, cmdlets, scripted_module_factory, writing_cmdlets

__all__ = ["ModuleFailed", "cmdlets", "writing_cmdlets", "scripted_module"]


@pytest.fixture
def scripted_module():
    """``scripted_module(answer, check_mode=False, **params) -> (module, server)``; see module_harness."""
    build, close = scripted_module_factory()
    yield build
    close()
