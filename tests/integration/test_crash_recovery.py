"""kill -9 fault injection: 20 SIGKILLs while 100,000 records are ingested, then a clean finish.

The scenario and its accounting are in crash_scenario.py (shared with scripts/crash_test.py). Run with -s to
see the per-kill table and the counts.
"""

import pytest
from crash_scenario import INPUT_NAME, run_crash_scenario

KILLS = 20


@pytest.mark.slow
def test_repeated_sigkill_loses_nothing_and_duplicates_only_records_in_flight_at_the_kills(
    moto, aws, splunkd, start_input
):
    result = run_crash_scenario(moto, aws, splunkd, start_input, kills=KILLS, seed=20261123)
    print("\n" + result.kill_table() + "\n" + result.summary())

    assert len(result.kills) == KILLS
    assert [k.exit_code for k in result.kills] == [-9] * KILLS, "every kill must find the process alive"
    # the kills must have hit work in progress, or the test proves nothing about recovery
    assert result.in_flight_total > 0
    assert sum(1 for k in result.kills if k.objects_mid) >= KILLS // 2, result.kill_table()

    assert result.expected_records == 100_000 and result.objects >= 100
    assert result.unexpected_events == 0, result.unexpected_examples
    assert result.lost == 0
    assert result.distinct_records == result.expected_records
    assert result.total_events == result.distinct_records + result.duplicates
    assert result.duplicates <= result.in_flight_total

    for kill in result.kills:
        # a stream cut by SIGKILL may end in a half-written event: not counted, and not a protocol error
        assert kill.protocol_errors == [], (kill.number, kill.protocol_errors)
        assert kill.progress_ahead == [], (kill.number, kill.progress_ahead[:3])
    assert result.final_protocol_errors == []
    assert result.final_exit_code == 0
    assert result.final_events > 0 and result.final_stream_complete
    assert result.final_error_lines == []

    assert result.queue_left is not None
    assert (result.queue_left.visible, result.queue_left.not_visible, result.queue_left.delayed) == (0, 0, 0)
    assert result.dlq_messages == 0, "no message may be given up"
    assert result.kv_problems == [], f"progress of input {INPUT_NAME}: {result.kv_problems[:5]}"
    assert result.failures() == []
