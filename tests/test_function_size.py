"""No function of the tap (the sandbox aside) is longer than a reader holds in view: a function
over MAX_LINES is several policies in one, to be split into functions that each answer one question."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "tap_callreports"
#: Lines from a function's `def` (decorators aside) to its last line, docstring included.
MAX_LINES = 80


def test_no_function_outside_the_sandbox_is_over_80_lines():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "sandbox" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_LINES:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, f"functions over {MAX_LINES} lines: {long}"
