"""The package's imports flow one way (docs/architecture.md, "Layers"): each module imports only
from its own layer or those below, and no circle of imports (type-only ones counted) holds more
than a handful of modules. Read from the source with `ast`, so a type-only import counts too."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "tap_callreports"

#: From the bottom up; a module's layer is that of its longest listed prefix, else "base".
LAYERS = ("base", "streams", "engine", "vendors", "top")
LAYER_OF = {
    # The base stream every vendor's stream builds on: HTTP, retries, auth, records.
    "client": "streams",
    # The vendor-neutral report-job engine.
    "reportjobs": "engine",
    "talkdesk": "vendors",
    "myreports": "vendors",
    "zendesk": "vendors",
    # Report types are declared data (they import rowshape only); settings name them.
    "talkdesk.report_types": "base",
    "tap": "top",
    "cli": "top",
    "__main__": "top",
    "connection_test": "top",
    "vendors": "top",
    "sandbox": "top",
}
#: The largest circle of modules importing each other allowed (type-only imports counted).
MAX_CIRCLE = 5


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imports(modules: dict[str, Path], *, type_only: bool = True) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (at run time, lazily, and, unless `type_only` is
    False, only for type checking: under `if TYPE_CHECKING`)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        tree = ast.parse(path.read_text())
        for_types = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for inner in ast.walk(node)
        }
        for node in ast.walk(tree):
            if not type_only and id(node) in for_types:
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = ".".join(["tap_callreports", *package[: len(package) - node.level + 1]])
                    base = f"{base}.{node.module}" if node.module else base
                else:
                    base = node.module or ""
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                if not target.startswith("tap_callreports"):
                    continue
                module = target.removeprefix("tap_callreports").removeprefix(".")
                while module and module not in modules:
                    module = module.rpartition(".")[0]
                if module and module != name:
                    graph[name].add(module)
    return graph


def _layer(module: str) -> str:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in LAYER_OF:
            return LAYER_OF[".".join(parts[:n])]
    return "base"


def _circles(graph: dict[str, set[str]], nodes: list[str]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                circle = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    circle.append(member)
                    if member == node:
                        break
                if len(circle) > 1:
                    circles.append(sorted(circle))
    return circles


def test_no_circle_of_imports_holds_more_than_a_handful_of_modules():
    modules = _modules()
    big = [circle for circle in _circles(_imports(modules), sorted(modules)) if len(circle) > MAX_CIRCLE]
    assert not big, f"modules importing each other in a circle of more than {MAX_CIRCLE}: {big}"


def test_no_import_cycle_at_run_time():
    modules = _modules()
    cycles = _circles(_imports(modules, type_only=False), sorted(modules))
    assert not cycles, f"modules importing each other at run time: {cycles}"


def test_each_layer_imports_only_its_own_or_the_layers_below():
    modules = _modules()
    upward = sorted(
        f"{module} ({_layer(module)}) imports {target} ({_layer(target)})"
        for module, targets in _imports(modules).items()
        for target in targets
        if LAYERS.index(_layer(target)) > LAYERS.index(_layer(module))
    )
    assert not upward, "imports reaching up a layer:\n" + "\n".join(upward)


def test_the_checker_sees_circles_and_type_only_imports():
    """The checker itself: a circle through an `if TYPE_CHECKING` import is one."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _circles(graph, ["a", "b", "c", "d"]) == [["a", "b", "c"]]
    imports = _imports(_modules())
    assert "errors" in imports["client"]  # a plain import
    assert "settings" in imports["talkdesk.client"]  # an import only for type checking
    assert "settings" not in _imports(_modules(), type_only=False)["talkdesk.client"]


def test_vendor_names_are_declared_once_in_the_registry():
    """The tap, the settings, the credentials and --test name no vendor: vendors.py declares each
    (a vendor's own package, and the settings schema's per-vendor defaults, still say its name)."""
    from tap_callreports.vendors import VENDORS

    named = {
        f"{module}: {node.value!r} (line {node.lineno})"
        for module in ("tap", "settings", "credentials", "connection_test")
        for node in ast.walk(ast.parse((PACKAGE / f"{module}.py").read_text()))
        if isinstance(node, ast.Constant) and node.value in VENDORS
    }
    assert set(VENDORS) == {"talkdesk", "zendesk", "myreports"}
    assert not named, f"vendor names outside vendors.py: {sorted(named)}"
