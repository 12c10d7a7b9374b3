"""The package's imports flow one way (docs/architecture.md, "Layers"): each module imports only
from its own layer or those below, and no circle of imports (type-only ones counted) holds more
than a handful of modules. Read from the source with `ast`, so a type-only import counts too."""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import json
import logging
import typing as t
from collections import defaultdict
from pathlib import Path

import requests
from singer_sdk import Stream

if t.TYPE_CHECKING:
    from tap_callreports.reportjobs.ports import VendorPort

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
    """The tap, the settings and their schema, the credentials and --test name no vendor:
    vendors.py declares each, with its report jobs at once (a vendor's own package still says its
    name)."""
    from tap_callreports.vendors import VENDORS

    assert all(vendor.concurrent_jobs for vendor in VENDORS.values() if vendor.job_records)
    named = {
        f"{module}: {node.value!r} (line {node.lineno})"
        for module in ("tap", "settings", "settings_schema", "credentials", "connection_test")
        for node in ast.walk(ast.parse((PACKAGE / f"{module}.py").read_text()))
        if isinstance(node, ast.Constant) and node.value in VENDORS
    }
    assert set(VENDORS) == {"talkdesk", "zendesk", "myreports"}
    assert not named, f"vendor names outside vendors.py: {sorted(named)}"


# ---- vendors behind a port ------------------------------------------------------------------------

#: The most members `VendorPort` may have: what every vendor's job object takes from its stream.
MAX_PORT_MEMBERS = 9
#: The modules of the vendors' job APIs, which take a `VendorPort` and never the stream.
VENDOR_JOB_MODULES = ("talkdesk/jobs.py", "myreports/requests.py")
STREAM_TYPES = {"ReportJobStream", "CallReportsStream", "JobStream", "ReadStream", "VendorStream"}

_CONFIG = {
    "start_date": "2026-10-01T00:00:00Z",
    "talkdesk_access_token": "t",
    "myreports_token": "m",
    "myreports_workspace_id": "w",
    "myreports_report_ids": ["r"],
}


def _answer(status: int, body: dict) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.url = "https://vendor.example/"
    return response


def _port(answers: list[requests.Response], sent: list[tuple]) -> VendorPort:
    """A port with no stream behind it: its HTTP answers `answers` in turn and notes what was sent."""
    from tap_callreports.reportjobs.ports import VendorPort
    from tap_callreports.settings import load_settings

    def send(method, url, *, json=None, allow_redirects=True, creates_job=False):
        sent.append((method, url, json, creates_job))
        return answers.pop(0)

    def unused(*_args):
        raise AssertionError("not asked for by a create")

    return VendorPort(
        name="a_stream",
        settings=load_settings(_CONFIG),
        logger=logging.getLogger("test.port"),
        send=send,
        state=lambda context: {},
        download=unused,
        open_report=unused,
        ask_job=unused,
        shaper=unused,
    )


def test_a_vendors_job_object_works_from_the_port_alone():
    """Each vendor's job object is made from a `VendorPort` and its own few values, with no stream
    anywhere: a create sends to the vendor's URL (from the settings) through the port's HTTP."""
    from tap_callreports.myreports.requests import MyReportsRequests
    from tap_callreports.reportjobs.job import Window
    from tap_callreports.talkdesk.jobs import TalkdeskReportJobs

    window = Window(dt.datetime(2026, 10, 1, tzinfo=dt.UTC), dt.datetime(2026, 10, 2, tzinfo=dt.UTC))
    sent: list[tuple] = []
    talkdesk = TalkdeskReportJobs(
        _port([_answer(202, {"job": {"id": "j1", "status": "created"}})], sent),
        "calls",
        row_keys=lambda: False,
        may_authenticate=lambda url: True,
    )
    assert talkdesk.create(None, window, 1).job_id == "j1"
    assert sent[-1][::3] == ("POST", True)
    assert sent[-1][1] == "https://api.talkdeskapp.com/data/reports/calls/jobs"
    myreports = MyReportsRequests(
        _port([_answer(200, {"status": "success", "data": {"requestId": "q1"}})], sent),
        keys=lambda: ("doc_id",),
        columns=frozenset,
    )
    assert myreports.create({"report_id": "r"}, window, 1).job_id == "q1"
    assert sent[-1][1] == "https://api.na.myreports.cloud/api/v1.0/workspaces/w/reports/r/requests"


def test_vendors_take_a_small_port_not_the_stream():
    """What a vendor takes from its report stream is a frozen `VendorPort` of a handful of values
    and bound callables; the vendors' job modules name no stream type, reach no `.stream`, and a
    stream's job object holds no stream."""
    from tap_callreports.reportjobs.ports import VendorPort
    from tap_callreports.tap import TapCallReports

    assert dataclasses.fields(VendorPort) and len(dataclasses.fields(VendorPort)) <= MAX_PORT_MEMBERS
    assert VendorPort.__dataclass_params__.frozen  # type: ignore[attr-defined]
    found = []
    for module in VENDOR_JOB_MODULES:
        for node in ast.walk(ast.parse((PACKAGE / module).read_text())):
            if isinstance(node, ast.Name) and node.id in STREAM_TYPES:
                found.append(f"{module}: {node.id} (line {node.lineno})")
            elif isinstance(node, ast.alias) and node.name in STREAM_TYPES:
                found.append(f"{module}: imports {node.name}")
            elif isinstance(node, ast.Attribute) and node.attr == "stream":
                found.append(f"{module}: .stream (line {node.lineno})")
    assert not found, f"a vendor's job module reaches the stream: {found}"
    tap = TapCallReports(config=_CONFIG, parse_env_config=False)
    for name in ("talkdesk_calls", "myreports_call_rows"):
        stream = tap.streams[name]
        held = [key for key, value in vars(stream.jobs).items() if isinstance(value, Stream)]
        assert not held, f"{name}'s job object holds a stream: {held}"
        assert stream.jobs.port is stream.port
