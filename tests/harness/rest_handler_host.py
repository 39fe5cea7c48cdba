"""The process in which splunkd runs an add-on's Python REST handlers (``handlerpersistentmode = true``).

Started by ``harness.rest_handlers`` as ``python -S rest_handler_host.py <app bin> <splunk stand-in>`` with the
bin folder as working directory and ``SPLUNK_HOME`` set: only the standard library, the stand-in of Splunk's
``splunk`` package and what the handler scripts import themselves (the add-on's ``lib/`` through
``import_declare_test``) are importable. It reads one JSON request per line on stdin, runs the handler file named
in it (``runpy``, as ``__main__``: the generated script calls ``admin_external.handle`` there), and writes one JSON
outcome per line on the stdout it started with; whatever the handler prints goes to stderr.
"""

import json
import os
import runpy
import sys


def main() -> None:
    bin_dir, standin_dir = sys.argv[1], sys.argv[2]
    # Not the harness folder python put first (its modules are the tests', not splunkd's).
    harness_dir = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [bin_dir, standin_dir, *(p for p in sys.path if os.path.abspath(p or ".") != harness_dir)]
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr

    from splunk import admin

    for line in sys.stdin:
        request = json.loads(line)
        script = os.path.join(bin_dir, request["handlerfile"])
        outcome = admin.serve(request, lambda script=script: runpy.run_path(script, run_name="__main__"))
        answers.write(json.dumps(outcome) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
