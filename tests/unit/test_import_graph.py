# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The import graph of the collection (``plugins/``) and of the emulator (``emulator/m365_emulator/``).

No module may import itself through others (a cycle), and the emulator imports at module level only: an
import inside a function hides a dependency (and usually a cycle) from whoever reads the top of the file.
Imports under ``if TYPE_CHECKING:`` are module level and allowed. Everything here reads the source with
``ast``; nothing it checks is imported.
"""

from __future__ import annotations

import ast
import pathlib
from dataclasses import dataclass

ROOT = pathlib.Path(__file__).resolve().parents[2]
COLLECTION_PACKAGE = "ansible_collections.m365ops.smtp_auth"
# (directory, the package name it is imported as)
TREES = [
    (ROOT / "plugins", COLLECTION_PACKAGE + ".plugins"),
    (ROOT / "emulator" / "m365_emulator", "m365_emulator"),
]
EMULATOR = ROOT / "emulator" / "m365_emulator"
# Calls that import by a name computed at run time.
DYNAMIC_IMPORTS = {"import_module", "__import__", "find_spec"}
SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


@dataclass(frozen=True)
class Module:
    name: str
    path: pathlib.Path
    is_package: bool


def modules_of(directory, package):
    """Every Python file under ``directory`` as a module of ``package``."""
    found = {}
    for path in sorted(directory.rglob("*.py")):
        parts = list(path.relative_to(directory).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        name = ".".join([package, *parts])
        found[name] = Module(name, path, is_package)
    return found


def imported_modules(module, tree, modules):
    """(line, module name) for each internal module an import statement loads: ``import X`` loads X;
    ``from X import Y`` loads the module X.Y when there is one, and X for any other name."""
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                yield node.lineno, submodule if submodule in modules else source


def import_graph(modules):
    """module name -> {imported internal module name: line of the first import of it}."""
    graph = {}
    for module in modules.values():
        tree = ast.parse(module.path.read_text(encoding="utf-8"), filename=str(module.path))
        edges = graph.setdefault(module.name, {})
        for line, target in imported_modules(module, tree, modules):
            if target in modules and target != module.name:
                edges.setdefault(target, line)
    return graph


def find_cycle(graph):
    """One import cycle as a list of module names (first == last), or None."""
    state = {}
    stack = []

    def visit(name):
        state[name] = "open"
        stack.append(name)
        for target in sorted(graph.get(name, {})):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[name] = "done"
        return None

    for name in sorted(graph):
        if name not in state:
            cycle = visit(name)
            if cycle:
                return cycle
    return None


def describe_cycle(graph, modules, cycle):
    steps = []
    for here, there in zip(cycle, cycle[1:]):
        path = modules[here].path.relative_to(ROOT)
        steps.append(f"  {here} imports {there} ({path}:{graph[here][there]})")
    return "import cycle:\n" + "\n".join(steps)


def imports_below_module_level(path):
    """(line, what) for every import inside a function, method, lambda or class body, and every dynamic import."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []

    def walk(node, scope):
        for child in ast.iter_child_nodes(node):
            inner = scope
            if isinstance(child, SCOPES):
                inner = getattr(child, "name", "lambda")
            if isinstance(child, (ast.Import, ast.ImportFrom)) and scope is not None:
                found.append((child.lineno, f"import inside {scope}"))
            if isinstance(child, ast.Call):
                called = child.func.attr if isinstance(child.func, ast.Attribute) else getattr(child.func, "id", "")
                if called in DYNAMIC_IMPORTS:
                    found.append((child.lineno, f"dynamic import {called}()"))
            walk(child, inner)

    walk(tree, None)
    return found


def all_modules():
    modules = {}
    for directory, package in TREES:
        modules.update(modules_of(directory, package))
    return modules


def test_both_trees_are_found():
    modules = all_modules()
    assert f"{COLLECTION_PACKAGE}.plugins.module_utils.errors" in modules
    assert "m365_emulator.server" in modules and "m365_emulator.core" in modules


def test_no_import_cycle_in_the_collection_or_the_emulator():
    modules = all_modules()
    graph = import_graph(modules)
    cycle = find_cycle(graph)
    assert cycle is None, describe_cycle(graph, modules, cycle)


def test_the_emulator_imports_at_module_level_only():
    offences = [f"{path.relative_to(ROOT)}:{line}: {what}"
                for path in sorted(EMULATOR.rglob("*.py")) for line, what in imports_below_module_level(path)]
    assert not offences, "imports below module level:\n" + "\n".join(offences)


def test_the_emulator_core_imports_no_service():
    modules = modules_of(EMULATOR, "m365_emulator")
    graph = import_graph(modules)
    services = ("m365_emulator.identity", "m365_emulator.graph", "m365_emulator.exchange", "m365_emulator.smtp",
                "m365_emulator.control", "m365_emulator.server", "m365_emulator.state")
    leaks = [f"{name} imports {target}" for name, edges in graph.items() if name.startswith("m365_emulator.core")
             for target in edges if target.startswith(services)]
    assert not leaks, "\n".join(leaks)


def reachable(graph, start):
    """start -> the path (list of names) by which each internal module is first reached from it."""
    paths = {start: [start]}
    queue = [start]
    while queue:
        name = queue.pop(0)
        for target in sorted(graph.get(name, {})):
            if target not in paths:
                paths[target] = paths[name] + [target]
                queue.append(target)
    return paths


# The HTTP clients and what loads requests or msal: only modules (run as their own processes) need them.
CLIENT_MODULES = tuple(COLLECTION_PACKAGE + ".plugins.module_utils." + name
                       for name in ("_transport", "_auth", "graph", "exchange", "module_base", "_services"))


def test_the_plugins_that_run_on_the_controller_load_no_http_client():
    """The role's filters and its report action run in Ansible's own worker processes, once per task; loading the
    HTTP stack there costs each such task more time than its checks take."""
    modules = modules_of(ROOT / "plugins", COLLECTION_PACKAGE + ".plugins")
    graph = import_graph(modules)
    controller = [name for name in modules if name.startswith((COLLECTION_PACKAGE + ".plugins.filter.",
                                                               COLLECTION_PACKAGE + ".plugins.action."))]
    assert controller
    leaks = [" -> ".join(path) for name in sorted(controller)
             for target, path in reachable(graph, name).items() if target in CLIENT_MODULES]
    assert not leaks, "a controller-side plugin reaches an HTTP client:\n" + "\n".join(leaks)


# -- the checks themselves, on a made-up package ---------------------------------------------------------

def write(directory, files):
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_a_cycle_through_relative_and_absolute_imports_is_found(tmp_path):
    write(tmp_path, {
        "__init__.py": "",
        "a.py": "from . import b\n",
        "b.py": "from pkg.sub import c\n",
        "sub/__init__.py": "",
        "sub/c.py": "from ..a import thing\n",
        "d.py": "import pkg.a\n",
    })
    modules = modules_of(tmp_path, "pkg")
    graph = import_graph(modules)
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]
    del graph["pkg.sub.c"]["pkg.a"]
    assert find_cycle(graph) is None


def test_imports_in_functions_are_found_and_type_checking_blocks_are_not(tmp_path):
    write(tmp_path, {"m.py": (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from pkg import other\n"
        "def f():\n"
        "    import json\n"
        "class C:\n"
        "    def g(self):\n"
        "        from pkg import other\n"
        "def h():\n"
        "    return importlib.import_module('pkg.other')\n"
    )})
    assert imports_below_module_level(tmp_path / "m.py") == [
        (5, "import inside f"), (8, "import inside g"), (10, "dynamic import import_module()")]
