"""What every input does at start-up, before its stanza runs."""

import gc
import types

from ta_aws_cloudtrail import runtime


def test_every_input_runs_with_the_raised_gc_threshold():
    before = gc.get_threshold()
    seen = []
    try:
        gc.set_threshold(700, 10, 10)
        inputs = types.SimpleNamespace(inputs={}, metadata={})
        runtime.run_stanzas(inputs, lambda context, params: seen.append(context))
        assert gc.get_threshold() == (runtime.GC_THRESHOLD, 10, 10)
    finally:
        gc.set_threshold(*before)
    assert seen == []  # no stanza given, none run
