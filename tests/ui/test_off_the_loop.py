"""No portal state code calls a blocking service on the event loop.

Reflex runs every event handler, sync or async, on the process's one event loop: a handler that
waits on the database, Argon2, SMTP, Twilio or the network stops every live page of every tab of
the process while it waits (issue 15: testing a connection, changing the history window, the
alerts page's query once a second). Such work must be handed to a thread (`asyncio.to_thread`,
`SessionState.in_tenant`), so on the loop it only appears as a function passed along, never as a
call.

This reads the source of veles_ui/state and fails on any call, in code that runs on the loop, to
a blocking function. Code on the loop: every method of a state class and every `async def`;
lambdas and nested functions are not followed (they are what gets handed to a thread). Blocking:
- a function of veles/, models/ or actors/ that takes a database session, a database URL or the
  settings (the services' way of reaching the database, Redis, SMTP, Twilio or a trade server),
  unless it is awaited (async) or listed in PURE with why it does no I/O;
- `SessionState.authorize` and `SessionState.tenant_db` (the session check may read the database);
- any function of veles_ui/state that calls one of these (transitively), such as `read_history`.
What it cannot see: blocking calls through values it cannot name (a callable held in a variable,
a method of an object a service returned); the cadence test in tests/browser covers the paths a
dealer uses while a dashboard streams.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from dataclasses import dataclass
from pathlib import Path

STATE = Path(__file__).resolve().parents[2] / "veles_ui" / "state"
SERVICE_PACKAGES = ("veles.", "models.", "actors.")
BLOCKING_PARAMETERS = {"db", "session", "database_url", "settings", "url"}
BLOCKING_TYPES = ("Session", "Settings")
BLOCKING_METHODS = {"authorize", "tenant_db"}
# Takes the settings but does no I/O.
PURE = {
    "veles.services.signing_keys.keyring": "builds the signing keys from the settings' secrets",
    "veles.services.sessions.session_versions": "the process's version cache, made once; connects nowhere",
}
# State modules another change is moving off the loop; each entry must go when that change lands.
PENDING: dict[str, str] = {}


@dataclass(frozen=True)
class Finding:
    where: str
    call: str

    def __str__(self) -> str:
        return f"{self.where} calls {self.call} on the event loop"


def _blocking_import(module: str, name: str) -> bool:
    """Whether `module.name` is a synchronous function that reaches a database, the settings'
    services or the network, by its signature."""
    if not module.startswith(SERVICE_PACKAGES) or f"{module}.{name}" in PURE:
        return False
    target = getattr(importlib.import_module(module), name, None)
    if not inspect.isfunction(target) or inspect.iscoroutinefunction(target) \
            or inspect.isasyncgenfunction(target):
        return False
    for parameter in inspect.signature(target).parameters.values():
        annotation = str(parameter.annotation)
        if parameter.name in BLOCKING_PARAMETERS or any(kind in annotation for kind in BLOCKING_TYPES):
            return True
    return False


class _Module:
    """One state module: what its names refer to, and its own functions."""

    def __init__(self, path: Path) -> None:
        self.name = f"veles_ui.state.{path.stem}"
        self.tree = ast.parse(path.read_text(), str(path))
        self.imported: dict[str, tuple[str, str]] = {}  # local name -> (module, name)
        self.modules: dict[str, str] = {}  # local alias -> module
        self.functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        for node in self.tree.body:
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    try:
                        importlib.import_module(full)
                    except ImportError:
                        self.imported[alias.asname or alias.name] = (node.module, alias.name)
                    else:
                        self.modules[alias.asname or alias.name] = full
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    self.modules[alias.asname or alias.name] = alias.name
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self.functions[node.name] = node


def _calls(body: ast.AST) -> list[ast.Call]:
    """The calls made by this code itself, not by the lambdas and functions it defines."""
    found: list[ast.Call] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Lambda | ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if isinstance(child, ast.Call):
                found.append(child)
            visit(child)

    for statement in getattr(body, "body", [body]):
        if isinstance(statement, ast.Lambda | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(statement, ast.Call):
            found.append(statement)
        visit(statement)
    return found


class _Audit:
    def __init__(self) -> None:
        self.modules = {m.name: m for m in (_Module(p) for p in sorted(STATE.glob("*.py")))}
        self._blocking_local: dict[tuple[str, str], bool] = {}

    def _local_blocks(self, module: str, name: str, seen: frozenset[tuple[str, str]] = frozenset()) -> bool:
        """Whether a sync function of a state module calls something blocking."""
        key = (module, name)
        if key in self._blocking_local:
            return self._blocking_local[key]
        node = self.modules[module].functions[name]
        blocks = isinstance(node, ast.FunctionDef) and key not in seen and any(
            self.blocking(module, call, seen | {key}) is not None for call in _calls(node))
        self._blocking_local[key] = blocks
        return blocks

    def blocking(self, module: str, call: ast.Call, seen: frozenset[tuple[str, str]] = frozenset()
                 ) -> str | None:
        """The name of the blocking function `call` calls, or None."""
        here = self.modules[module]
        func = call.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            if func.value.id == "self" and func.attr in BLOCKING_METHODS:
                return f"self.{func.attr}"
            owner = here.modules.get(func.value.id)
            if owner and _blocking_import(owner, func.attr):
                return f"{owner}.{func.attr}"
        if isinstance(func, ast.Name):
            if func.id in here.functions:
                return func.id if self._local_blocks(module, func.id, seen) else None
            if func.id in here.imported:
                source, name = here.imported[func.id]
                if source in self.modules and name in self.modules[source].functions:
                    return f"{source}.{name}" if self._local_blocks(source, name, seen) else None
                if _blocking_import(source, name):
                    return f"{source}.{name}"
        return None

    def findings(self) -> list[Finding]:
        found: list[Finding] = []
        for name, module in self.modules.items():
            if name in PENDING:
                continue
            on_loop: list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]] = []
            for node in module.tree.body:
                if isinstance(node, ast.ClassDef):
                    on_loop += [(f"{node.name}.{f.name}", f) for f in node.body
                                if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                                and f.name not in BLOCKING_METHODS]
                elif isinstance(node, ast.AsyncFunctionDef):
                    on_loop.append((node.name, node))
            for where, function in on_loop:
                for call in _calls(function):
                    blocking = self.blocking(name, call)
                    if blocking is not None:
                        found.append(Finding(f"{name}:{where} (line {call.lineno})", blocking))
        return found


def test_no_state_code_calls_a_blocking_service_on_the_event_loop() -> None:
    findings = _Audit().findings()
    assert not findings, "\n".join(map(str, findings))


def test_the_audit_sees_the_blocking_calls_it_is_for() -> None:
    """The audit itself: the service calls issue 15 found on the loop count as blocking, and a
    call handed to a thread does not."""
    assert _blocking_import("veles.services.connections", "check_connection")
    assert _blocking_import("veles.services.admin", "tenants_usage")
    assert _blocking_import("models.db", "tenant_session")
    assert _blocking_import("veles.services.sessions", "check_session")
    assert not _blocking_import("veles.services.signing_keys", "keyring")
    assert not _blocking_import("veles.services.engine", "apply_rules")  # async: awaited
    audit = _Audit()
    source = ast.parse(
        "async def handler(self):\n"
        "    check_connection(db, settings, 1, 2)\n"
        "    await asyncio.to_thread(check_connection, db, settings, 1, 2)\n"
        "    await self.in_tenant(P, lambda db, who: check_connection(db, settings, 1, 2))\n"
        "    read_history(1, 2, '6h')\n"
        "    self.authorize(P)\n")
    calls = _calls(source.body[0])
    accounts = "veles_ui.state.accounts"
    audit.modules[accounts].imported["check_connection"] = ("veles.services.connections", "check_connection")
    named = [audit.blocking(accounts, call) for call in calls]
    assert [n for n in named if n] == ["veles.services.connections.check_connection", "read_history",
                                       "self.authorize"]
