"""Imports go one way: ui -> services -> actors -> risk core, models below all (the developers'
guide). A module that imports upward builds a circle sooner or later, and a circle only breaks
for the importer that happens to come first: `veles.billing.readonly` imported the API while the
API and the portal imported it, and only Locust's order (loadtests -> veles_ui -> billing) hit it.

Checked two ways: statically, every import of every module against its layer's banned ones; and
by importing each entry point first in a fresh interpreter, as each of its users does."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# folder -> the packages its modules may not import
BANNED: dict[str, tuple[str, ...]] = {
    "models": ("veles", "actors", "veles_ui"),
    "veles/risk": ("actors", "veles.services", "veles.api", "veles.billing", "veles_ui"),
    "actors": ("veles.services", "veles.api", "veles.billing", "veles_ui"),
    "veles/services": ("veles.api", "veles_ui"),
    "veles/billing": ("veles.api", "veles_ui"),
}
# A domain folder's HTTP routes belong to the API (Netflix/dispatch's layout): only the API imports them.
API_SIDE = "routes.py"


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = []
    for folder, banned in BANNED.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name == API_SIDE:
                continue
            for name in _imports(path):
                if any(name == b or name.startswith(f"{b}.") for b in banned):
                    upward.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize("module", ["veles_ui.state.session", "veles.billing.readonly",
                                    "veles.bench.dashboard_sockets"])
def test_each_entry_point_imports_first_in_a_fresh_interpreter(module: str) -> None:
    result = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
