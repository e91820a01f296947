# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The setup, test and demo scripts run under ``set -o pipefail``. A pipe into a reader that stops
early (``head``, ``grep -q``, ``grep -m``, ``sed ...q``) makes the writer die of SIGPIPE when the reader
exits first, and pipefail turns that race into a failed run about one time in three."""

from __future__ import annotations

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPTS = sorted(ROOT.glob("scripts/*.sh")) + [ROOT / "Makefile", ROOT / ".ci" / "run"]

# A pipe whose reader may exit before reading everything the writer sends.
EARLY_EXIT_READER = re.compile(
    r"\|\s*(?:head\b|tail\s+-n\s*\+|grep\s+(?:-\w*\s+)*-\w*[qm]|sed\s+(?:-n\s+)?'?[^|]*\bq\b)")


def early_exit_pipes(text):
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0] if not line.lstrip().startswith("#") else ""
        if EARLY_EXIT_READER.search(code):
            found.append((number, line.strip()))
    return found


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_pipe_into_a_reader_that_exits_early(path):
    assert early_exit_pipes(path.read_text()) == []


@pytest.mark.parametrize("line", [
    '"$venv/bin/ansible" --version | head -n 1',
    'echo "$found" | head -n 20 >&2',
    'tail -n 1 log | grep -Eq passed',
    'ansible-doc --list | grep -m1 module',
    "ansible --version | sed -n '1p;q'",
])
def test_the_check_sees_the_shapes_that_flake(line):
    assert early_exit_pipes(line)


@pytest.mark.parametrize("line", [
    'tar -tzf "$tarball" | grep -E "$unwanted" || true',
    "ansible-playbook site.yml | sed -n '/PLAY RECAP/,$p'",
    "sed -n 1,20p <<<\"$found\" >&2",
    "# a comment mentioning | head is fine",
])
def test_the_check_leaves_readers_that_read_everything(line):
    assert early_exit_pipes(line) == []
