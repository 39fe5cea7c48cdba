"""Runs last: nothing the built input wrote during the whole suite (events, stderr, log files) carries a secret."""

import pytest


@pytest.mark.last
def test_no_secret_appears_in_any_event_stderr_or_log_of_the_suite(artifacts):
    texts = artifacts.texts()
    scanned = sum(len(t) for t in texts.values())
    leaks = [
        (name, f"{secret[:3]}… ({len(secret)} chars)")
        for name, text in texts.items()
        for secret in set(artifacts.secrets)
        if secret and secret in text
    ]
    secrets = len(set(artifacts.secrets))
    print(f"\nsecret scan: {secrets} secrets, {len(texts)} outputs, {scanned} characters, {len(leaks)} hits")
    assert not leaks, leaks
    if artifacts.runs:  # when only this file runs there is nothing to scan
        assert len(texts) >= len(artifacts.runs) and scanned > 0
