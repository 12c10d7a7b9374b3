from __future__ import annotations

import sys
import typing as t
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tap_callreports.sandbox import RunningSandbox, SandboxConfig, start_sandbox  # noqa: E402


@pytest.fixture
def make_sandbox() -> t.Iterator[t.Callable[..., RunningSandbox]]:
    """Start sandboxes with chosen settings; all are stopped after the test."""
    started: list[RunningSandbox] = []

    def make(**overrides: t.Any) -> RunningSandbox:
        sandbox = start_sandbox(SandboxConfig(**overrides))
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def sandbox(make_sandbox: t.Callable[..., RunningSandbox]) -> RunningSandbox:
    return make_sandbox()
