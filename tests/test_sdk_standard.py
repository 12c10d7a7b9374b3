"""The singer-sdk standard tap tests, run against a live sandbox over HTTP."""

from __future__ import annotations

import atexit

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from helpers import sandbox_config
from tap_callreports.sandbox import SandboxConfig, start_sandbox
from tap_callreports.tap import TapCallReports

# The standard tests are generated at import time from a config, so the sandbox starts here.
_SANDBOX = start_sandbox(SandboxConfig(seed=7, list_anchor="2026-10-03T00:00:00Z"))
atexit.register(_SANDBOX.stop)

TestTapCallReports = get_tap_test_class(
    tap_class=TapCallReports,
    config=sandbox_config(
        _SANDBOX,
        talkdesk_report_types=["calls", "studio_flow_execution"],
        start_date="2026-10-01T00:00:00Z",
        end_date="2026-10-03T00:00:00Z",
    ),
    suite_config=SuiteConfig(max_records_limit=500),
)
