import logging

from ta_aws_cloudtrail.logs import REDACTED, SECRETS, RedactingFilter, SecretRegistry, redact


def test_registered_values_and_url_credentials_are_redacted():
    registry = SecretRegistry()
    registry.add("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    registry.add("abc")  # too short to redact safely
    text = registry.redact(
        "key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY via http://user:p%40ss@proxy:3128 abc "
        "aws_session_token=FQoGZXIvYXdzEJr"
    )
    assert "wJalrXUtnFEMI" not in text and "p%40ss" not in text and "FQoGZXIvYXdzEJr" not in text
    assert text.count(REDACTED) == 3
    assert "abc" in text


def test_longer_secrets_are_replaced_before_their_substrings():
    registry = SecretRegistry()
    registry.add("secret")
    registry.add("secret-and-more")
    assert registry.redact("x secret-and-more y") == f"x {REDACTED} y"


def test_filter_redacts_arguments_and_tracebacks(tmp_path):
    SECRETS.add("TOP-SECRET-VALUE-123")
    path = tmp_path / "log.txt"
    handler = logging.FileHandler(path)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("test_logs_filter")
    logger.addHandler(handler)
    try:
        logger.warning("value %s", "TOP-SECRET-VALUE-123")
        try:
            raise RuntimeError("boom TOP-SECRET-VALUE-123")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
        handler.close()
    content = path.read_text()
    assert "TOP-SECRET-VALUE-123" not in content
    # the argument, the traceback's source line and the exception message
    assert content.count(REDACTED) == 3 and "RuntimeError" in content
    assert redact(RuntimeError("TOP-SECRET-VALUE-123")) == REDACTED
