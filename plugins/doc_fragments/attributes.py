# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


class ModuleDocFragment:
    # Every module is in the m365 action group (meta/runtime.yml), so one module_defaults entry serves all.
    ACTION_GROUP = r"""
attributes:
  action_group:
    description: Use C(group/m365ops.smtp_auth.m365) in C(module_defaults) to set the connection options once.
    support: full
    membership:
      - m365ops.smtp_auth.m365
"""
