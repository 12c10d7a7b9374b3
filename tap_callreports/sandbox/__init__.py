"""A local server implementing the vendors' documented contracts, for tests and demos."""

from tap_callreports.sandbox.server import RunningSandbox, SandboxConfig, start_sandbox

__all__ = ["RunningSandbox", "SandboxConfig", "start_sandbox"]
