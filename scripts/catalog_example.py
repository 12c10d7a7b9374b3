"""Write catalog.example.json: `tap-callreports --discover` against the sandbox, every vendor set."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers import sandbox_config  # noqa: E402

from tap_callreports.sandbox import start_sandbox  # noqa: E402
from tap_callreports.tap import TapCallReports  # noqa: E402

EXAMPLE_OVERRIDES = {
    "talkdesk_report_types": ["calls", "contacts", "user_status", "ring_attempts", "studio_flow_execution"],
}


def discovered_catalog() -> dict:
    with start_sandbox() as sandbox:
        config = sandbox_config(sandbox, **EXAMPLE_OVERRIDES)
        return TapCallReports(config=config, validate_config=False).catalog_dict


if __name__ == "__main__":
    (ROOT / "catalog.example.json").write_text(json.dumps(discovered_catalog(), indent=2) + "\n")
    print("wrote catalog.example.json")
