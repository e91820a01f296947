# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One Exchange Online cmdlet as data, apart from the client that sends it.

The checks that run on the controller (the role's filters and its report) read how a cmdlet is built without
loading the HTTP stack; ``ExchangeClient`` runs them (``invoke_many``) and builds its request bodies with
``cmdlet_input``. Internal to this collection.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CmdletCall:
    """One cmdlet with its parameters; ``identity`` is what a not-found error names."""

    cmdlet: str
    parameters: dict = field(default_factory=dict)
    identity: str | None = None

    def run(self, exchange):
        return exchange.invoke(self.cmdlet, self.parameters, identity=self.identity)

    @property
    def body(self):
        return cmdlet_input(self.cmdlet, self.parameters)


def cmdlet_input(cmdlet, parameters):
    """The JSON body of one InvokeCommand request, alone or as a $batch item."""
    return {"CmdletInput": {"CmdletName": cmdlet, "Parameters": dict(parameters or {})}}
