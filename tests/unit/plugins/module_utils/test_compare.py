# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.m365ops.smtp_auth.plugins.module_utils._compare import read_compare_write_setting


@pytest.mark.parametrize("check_mode, expected_writes", [(False, ["disabled"]), (True, [])])
def test_drifting_setting_is_written_only_outside_check_mode(check_mode, expected_writes):
    writes = []
    result = read_compare_write_setting("security_defaults", "disabled", read=lambda: "enabled", write=writes.append,
                                        check_mode=check_mode)
    assert writes == expected_writes
    assert result == {
        "changed": True,
        "before": "enabled",
        "after": "disabled",
        "diff": {"before": {"security_defaults": "enabled"}, "after": {"security_defaults": "disabled"}},
    }


def test_setting_already_as_desired_is_not_written():
    writes = []
    result = read_compare_write_setting("smtp_auth", "enabled", read=lambda: "enabled", write=writes.append, check_mode=False)
    assert writes == []
    assert result["changed"] is False
    assert (result["before"], result["after"]) == ("enabled", "enabled")
