"""Where the SQS input's CPU goes, end to end: the built input against moto and the splunkd emulator (as in
`make bench`, sections b and g), sampled by py-spy across all its threads, grouped by role.

    make profile        (installs py-spy into .venv; or: .venv/bin/python scripts/profile_input.py [--quick])

Scenarios: "large" = objects of 1,000 records (the typical mix of bench section b), "small" = a live trail's
objects of ~8 records fed continuously (section g). For each, one line per role with its share of the input's
CPU samples, and the input's CPU time per 1,000 events / per object. py-spy samples Python stacks; time in C code
(zlib, the JSON scanner, ssl) is counted in the Python function that called it.

`--perf` samples with Linux perf instead (it must be installed: Debian's linux-perf), grouping samples by the
native code they land in. py-spy counts only samples holding the GIL, so it cannot see what the kernel spends on
thread hand-offs (futex waits and wakes) or on writing events into stdout's pipe; perf sees every CPU sample.
"""

import argparse
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile

SCRIPTS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, SCRIPTS)

import bench  # noqa: E402
from bench import (  # noqa: E402
    MIXES,
    CountingInput,
    MotoProcess,
    feed_continuously,
    load_queue,
    make_object_bytes,
    small_object_messages,
)
from environment import input_params, seed  # noqa: E402

from harness.aws import AwsTestEnv  # noqa: E402
from harness.modinput import ModularInputRunner  # noqa: E402
from harness.pythons import python_binary  # noqa: E402
from harness.splunkd import SplunkdEmulator  # noqa: E402

ROLES = (
    "JSON scanning of records (objects.py)",
    "gzip decompression (objects.py)",
    "event XML and stdout writes (events.py)",
    "batching and record filters",
    "S3 body reads (botocore, urllib3, http, ssl)",
    "AWS API calls (SQS, S3 GetObject request, STS)",
    "KV store calls (claims, progress)",
    "logging and metrics",
    "thread hand-offs and waits",
    "other (interpreter, start-up, input loop)",
)


def role(frames):
    """The role of one sampled stack (outermost frame first), from its innermost frame that says."""
    names = " ".join(frames)
    for frame in reversed(frames):
        function, _, where = frame.partition(" (")
        path = where.split(":", 1)[0]
        base = os.path.basename(path)
        if base == "objects.py":
            return ROLES[1] if function.startswith(("_gunzip", "_output_before_error")) else ROLES[0]
        if base == "events.py":
            return ROLES[2]
        if base in ("batches.py", "filters.py"):
            return ROLES[3]
        if base in ("kvstore.py", "claims.py", "checkpoints.py") or "splunklib" in path:
            return ROLES[6]
        if base in ("metrics.py", "logs.py") or "/logging/" in path:
            return ROLES[7]
        if any(part in path for part in ("botocore", "boto3", "urllib3")) or base in (
            "ssl.py",
            "socket.py",
            "client.py",
        ):
            if "_counted_chunks" in names:
                return ROLES[4]
            if "kvstore.py" in names:
                return ROLES[6]
            return ROLES[5]
        if base in ("threading.py", "queue.py") or "concurrent/futures" in path:
            return ROLES[8]
    return ROLES[9]


NATIVE_ROLES = (
    "Python interpreter (bytecode, objects, allocation)",
    "JSON scanner (_json)",
    "zlib (inflate, crc32)",
    "libc (memory copies, malloc)",
    "TLS and hashing (libssl, libcrypto)",
    "kernel: futex (GIL and lock hand-offs)",
    "kernel: writes (stdout pipe, sockets)",
    "kernel: reads (sockets)",
    "kernel: other (scheduling, interrupts, memory)",
    "other",
)
_KERNEL_SYSCALLS = (
    (("__x64_sys_futex",), NATIVE_ROLES[5]),
    (("ksys_write", "__x64_sys_sendto", "__sys_sendto", "sock_sendmsg"), NATIVE_ROLES[6]),
    (("ksys_read", "__x64_sys_recvfrom", "__sys_recvfrom", "sock_recvmsg"), NATIVE_ROLES[7]),
)


def native_role(frames):
    """The role of one perf sample, from its frames (innermost first): "symbol+offset (library)" each."""
    library = os.path.basename(frames[0].rpartition(" (")[2].rstrip(")"))
    if library == "[kernel.kallsyms]":
        names = {frame.split("+", 1)[0] for frame in frames}
        for symbols, name in _KERNEL_SYSCALLS:
            if names.intersection(symbols):
                return name
        return NATIVE_ROLES[8]
    for prefix, name in (
        ("libpython", NATIVE_ROLES[0]),
        ("python3", NATIVE_ROLES[0]),
        ("_json", NATIVE_ROLES[1]),
        ("libz.", NATIVE_ROLES[2]),
        ("zlib", NATIVE_ROLES[2]),
        ("libc.", NATIVE_ROLES[3]),
        ("libssl", NATIVE_ROLES[4]),
        ("libcrypto", NATIVE_ROLES[4]),
    ):
        if library.startswith(prefix):
            return name
    return NATIVE_ROLES[9]


def read_perf(path):
    """perf's samples, grouped by native_role (perf script prints a header line and the frames of each)."""
    counts = collections.Counter()
    script = subprocess.run(
        ["perf", "script", "-i", path], capture_output=True, text=True, errors="replace", check=True
    )  # a failed recording (no data file) stops here rather than printing a table of zeros
    for block in script.stdout.split("\n\n"):
        frames = [line.strip().split(None, 1)[-1] for line in block.splitlines()[1:] if line.strip()]
        if frames:
            counts[native_role(frames)] += 1
    return counts


def read_raw(path):
    """py-spy's raw output: one "frame;frame;... count" line per distinct stack."""
    counts = collections.Counter()
    with open(path, encoding="utf-8", errors="replace") as raw:
        for line in raw:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if stack and count.isdigit():
                counts[role(stack.split(";"))] += int(count)
    return counts


class Sampler:
    """A sampling profiler attached to a running input until stopped; stop() returns its samples by role."""

    def __init__(self, command, read, output):
        self.output = output
        self.read = read
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self):
        self.process.send_signal(signal.SIGINT)
        self.process.wait(60)
        return self.read(self.output)


def py_spy(pid, output):
    """py-spy, Python stacks of the threads holding the GIL, grouped by ROLES."""
    return Sampler(
        [shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy"), "record", "--pid",
         str(pid), "--rate", "250", "--format", "raw", "--output", output, "--nonblocking", "--gil"],
        read_raw, output,
    )  # fmt: skip


def perf(pid, output):
    """Linux perf, every CPU sample, grouped by NATIVE_ROLES."""
    return Sampler(["perf", "record", "-F", "999", "-g", "-p", str(pid), "-o", output], read_perf, output)


def large(workdir, moto, splunkd, objects, python, sampler=py_spy):
    aws = AwsTestEnv(moto)
    data = [make_object_bytes(1000 + n, MIXES["typical"]) for n in range(10)]
    queue = load_queue(aws, moto, objects, data)
    runner = ModularInputRunner(bench.ADDON, os.path.join(workdir, "large"), python=python)
    counting = CountingInput(runner, "large", input_params(moto, queue, visibility_timeout=300), splunkd)
    counting.wait_for(1, timeout=120)
    running = sampler(counting.process.pid, os.path.join(workdir, "large.txt"))
    counting.wait_for(objects * 1000, timeout=1800)
    cpu = counting.cpu_seconds() - counting.cpu_at_first
    counts = running.stop()
    counting.stop()
    return counts, {"events": objects * 1000, "cpu_ms_per_1000_events": 1e6 * cpu / (objects * 1000)}


def small(workdir, moto, splunkd, objects, python, sampler=py_spy, records_per_object=8, backlog=40):
    aws = AwsTestEnv(moto)
    queue = aws.create_queue(visibility_timeout=300)
    bodies = small_object_messages(aws, objects, records_per_object)
    runner = ModularInputRunner(bench.ADDON, os.path.join(workdir, "small"), python=python)
    counting = CountingInput(runner, "small", input_params(moto, queue, visibility_timeout=300), splunkd)
    feed_continuously(aws, queue, bodies, backlog)
    counting.wait_for(1, timeout=120)
    running = sampler(counting.process.pid, os.path.join(workdir, "small.txt"))
    counting.wait_for(objects * records_per_object, timeout=1800)
    cpu = counting.cpu_seconds() - counting.cpu_at_first
    counts = running.stop()
    counting.stop()
    return counts, {"objects": objects, "cpu_ms_per_object": 1000 * cpu / objects}


def print_table(title, counts, figures, roles=ROLES):
    total = sum(counts.values()) or 1
    print(
        f"\n{title}: {', '.join(f'{k} {v:,.2f}' if isinstance(v, float) else f'{k} {v:,}' for k, v in figures.items())}"
    )
    for name in roles:
        print(f"  {name:<55} {100 * counts.get(name, 0) / total:5.1f}%")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--large-objects", type=int, default=60)
    parser.add_argument("--small-objects", type=int, default=1500)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--python", help="the input runs under this Python version (3.9, 3.13) instead of this one")
    parser.add_argument("--perf", action="store_true", help="sample with Linux perf, by native code, instead of py-spy")
    args = parser.parse_args()
    python = python_binary(args.python) if args.python else sys.executable
    if python is None:
        print(f"Python {args.python} is not found (see tests/harness/pythons.py)", file=sys.stderr)
        return 2
    if args.quick:
        args.large_objects, args.small_objects = 15, 300
    if args.perf:
        if not shutil.which("perf"):
            print("perf is needed for --perf (Debian: apt-get install linux-perf)", file=sys.stderr)
            return 2
        sampler, roles = perf, NATIVE_ROLES
    elif not (shutil.which("py-spy") or os.path.exists(os.path.join(os.path.dirname(sys.executable), "py-spy"))):
        print("py-spy is needed: .venv/bin/pip install py-spy (make profile does it)", file=sys.stderr)
        return 2
    else:
        sampler, roles = py_spy, ROLES
    workdir = tempfile.mkdtemp(prefix="ta-aws-cloudtrail-profile-")
    with MotoProcess() as moto, SplunkdEmulator(seed(settings={"logging": {"loglevel": "INFO"}})) as splunkd:
        print_table(
            f"large objects ({args.large_objects} x 1,000 records)",
            *large(workdir, moto, splunkd, args.large_objects, python, sampler),
            roles,
        )
        print_table(
            f"small objects ({args.small_objects} x 8 records)",
            *small(workdir, moto, splunkd, args.small_objects, python, sampler),
            roles,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
