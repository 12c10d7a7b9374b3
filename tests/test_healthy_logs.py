"""A healthy run logs nothing alarming: no WARNING or ERROR line, no METRIC saying `failed` for an
answer the tap asked for, and each INFO line said once."""

from __future__ import annotations

import collections
import datetime as dt

from helpers import run_cli, sandbox_config


def alarming(run) -> list[str]:
    return [
        line
        for line in run.stderr_lines
        if "| WARNING" in line or "| ERROR" in line or '"status":"failed"' in line or "Traceback" in line
    ]


def test_the_connection_test_logs_its_expected_404s_as_succeeded(tmp_path, sandbox):
    run = run_cli(tmp_path, sandbox_config(sandbox, talkdesk_report_types=["calls", "contacts"]), "--test")
    assert run.returncode == 0, run.stderr[-2000:]
    probes = [line for line in run.stderr_lines if "METRIC" in line and '"http_status_code":404' in line]
    assert len(probes) == 2 and all('"status":"succeeded"' in line for line in probes), probes
    assert alarming(run) == []


def test_a_full_sync_and_an_immediate_second_run_log_nothing_alarming(tmp_path, sandbox):
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%Y-%m-%dT00:00:00Z")
    config = sandbox_config(sandbox, start_date=start, end_date=None)
    first = run_cli(tmp_path, config)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.records("talkdesk_imports") or first.records("talkdesk_calls")
    assert alarming(first) == []
    # talkdesk_imports' bookmark moves when the stream ends, by design: said at INFO, not as a warning.
    assert any("| INFO" in line and "assumed to be unsorted" in line for line in first.stderr_lines)

    second = run_cli(tmp_path, config, state=first.final_state)  # right after: under min_window_minutes
    assert second.returncode == 0, second.stderr[-3000:]
    assert alarming(second) == []
    # Each line once: the reason a stream makes no job this run (under min_window_minutes, or no new
    # data at all when both runs fall in one minute) is not said again when the stream syncs.
    said = collections.Counter(line.split(" | ")[-1] for line in second.stderr_lines if "METRIC" not in line)
    assert [line for line, times in said.items() if times > 1] == []
    for stream in ("talkdesk_calls", "myreports_call_rows"):
        assert (
            sum(1 for line in said if line.startswith(stream) and ("no new job" in line or "nothing to" in line)) == 1
        )


def test_make_demo_takes_a_port_in_time_wait_and_refuses_one_in_use():
    import socket
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    import demo

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    assert not demo.port_is_free(port)  # something listens: refused
    client = socket.create_connection(("127.0.0.1", port))
    served, _ = listener.accept()
    served.close()  # the server side closes first: its end of the connection stays in TIME-WAIT
    listener.close()
    client.close()
    plain = socket.socket()
    try:
        plain.bind(("127.0.0.1", port))  # what the demo's probe did before: refused for a minute
        in_time_wait = False
    except OSError:
        in_time_wait = True
    finally:
        plain.close()
    assert in_time_wait, "the precondition did not hold: no TIME-WAIT on the port"
    assert demo.port_is_free(port)


def test_the_readme_shows_the_query_make_demo_prints():
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root / "scripts"))
    import demo

    command = demo.query_command(root / "output" / "callreports.duckdb")
    assert "from callreports.callreports.talkdesk_calls" in command  # fully qualified: DuckDB finds it
    assert command in (root / "README.md").read_text()
