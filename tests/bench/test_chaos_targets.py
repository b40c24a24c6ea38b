"""The chaos run covers every Redis channel and key the code makes (`veles/bench/chaos_targets.py`).

Redis names are made in two ways only: `redis_name(prefix, ...)` and bus topic functions (`*_topic`,
prefixed by `RedisBus`). This scans the code for both and fails on a place the chaos list does not
name, so a new channel or key gets its malformed messages before it lands (and a removed one is
dropped from the list)."""

from __future__ import annotations

import ast
from pathlib import Path

from veles.bench import chaos_targets

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("veles", "actors", "models", "veles_ui")
SKIP = {"veles/config.py", "veles/bench/chaos_targets.py", "veles/bench/chaos.py"}  # define / use the list


def _name_sources() -> set[str]:
    found: set[str] = set()
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative in SKIP:
                continue
            for node in ast.walk(ast.parse(path.read_text(), relative)):
                if isinstance(node, ast.Call):
                    func = node.func
                    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                    if name == "redis_name" and len(node.args) == 2:
                        found.add(f"{relative}:redis_name:{ast.unparse(node.args[1])}")
                elif (isinstance(node, ast.FunctionDef) and node.name.endswith("_topic")) or (
                        isinstance(node, ast.FunctionDef) and node.name == "_topic"):
                    found.add(f"{relative}:{node.name}")
    return found


def test_every_redis_name_the_code_makes_is_in_the_chaos_run() -> None:
    in_code = _name_sources()
    listed = chaos_targets.sources()
    assert in_code - listed == set(), (
        "new Redis channels or keys: add them to veles/bench/chaos_targets.py (TARGETS, or IN_PROCESS "
        "with why) so `veles chaos` puts malformed messages on them")
    assert listed - in_code == set(), "listed in veles/bench/chaos_targets.py but no longer in the code"


def test_each_target_has_its_junk() -> None:
    kinds = {target.kind for target in chaos_targets.TARGETS}
    assert kinds == {"channel", "key"}
    names = [target.redis_name("p:", 3) for target in chaos_targets.TARGETS]
    assert len(set(names)) == len(names)
    assert all(name.startswith("p:") and "{" not in name for name in names)
    assert "p:alerts:3" in names
    assert "p:book:3" in names
