"""Post-build steps run by ``ucc-gen build``: ``cleanup_output_files`` changes the built tree, then
``additional_packaging`` checks the result, so a package that would fail AppInspect is never produced.

It makes the built add-on pass AppInspect and stay small and pure Python:
- botocore's client-side monitoring (CSM) would open a UDP socket when enabled; AppInspect fails
  any app that can send UDP, so the monitor factory is replaced by one that returns None.
- botocore ships models for ~440 AWS services (28 MB); the add-on calls only S3, SQS, STS, CloudTrail
  (LookupEvents) and CloudWatch Logs (FilterLogEvents).
- byte code, caches and compiled libraries are removed; a compiled file left in lib/ fails the build.
- nothing is group- or world-writable.
"""

import os
import re
import shutil
import stat

BOTOCORE_SERVICES_USED = {"s3", "sqs", "sts", "cloudtrail", "logs"}
COMPILED_SUFFIXES = (".so", ".pyd", ".dylib", ".dll", ".exe")

_CSM_FACTORY = re.compile(
    r"(?ms)^    def _create_csm_monitor\(self\):\n.*?(?=^    def )",
)
_CSM_REPLACEMENT = (
    "    def _create_csm_monitor(self):\n"
    "        # TA_aws_cloudtrail: client-side monitoring (UDP) is disabled in this add-on.\n"
    "        return None\n\n"
)


def _disable_botocore_csm(lib_dir: str) -> None:
    path = os.path.join(lib_dir, "botocore", "session.py")
    with open(path, encoding="utf-8") as f:
        source = f.read()
    patched, count = _CSM_FACTORY.subn(_CSM_REPLACEMENT, source)
    if count != 1 or "SOCK_DGRAM" in patched:
        raise RuntimeError(f"could not disable botocore CSM in {path}: the botocore layout changed")
    with open(path, "w", encoding="utf-8") as f:
        f.write(patched)


def _trim_botocore_models(lib_dir: str) -> None:
    data_dir = os.path.join(lib_dir, "botocore", "data")
    for name in os.listdir(data_dir):
        path = os.path.join(data_dir, name)
        if os.path.isdir(path) and name not in BOTOCORE_SERVICES_USED:
            shutil.rmtree(path)
    missing = [s for s in BOTOCORE_SERVICES_USED if not os.path.isdir(os.path.join(data_dir, s))]
    if missing:
        raise RuntimeError(f"botocore models missing after trim: {missing}")


def _remove_caches_and_binaries(root: str) -> None:
    for dirpath, dirnames, filenames in os.walk(root, topdown=True):
        for d in list(dirnames):
            if d == "__pycache__":
                shutil.rmtree(os.path.join(dirpath, d))
                dirnames.remove(d)
        for f in filenames:
            if f.endswith((".pyc", ".pyo")) or f == ".DS_Store":
                os.remove(os.path.join(dirpath, f))
            elif f.endswith(COMPILED_SUFFIXES):
                raise RuntimeError(
                    f"compiled file {os.path.join(dirpath, f)} in the package: lib/ must stay pure Python"
                )


def _drop_group_world_write(root: str) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            mode = os.lstat(path).st_mode
            os.chmod(path, (mode | stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH) & ~(stat.S_IWGRP | stat.S_IWOTH))
    os.chmod(root, 0o755)


_built_addon_dirs = {}  # ta_name -> the directory cleanup_output_files cleaned (UCC passes only the name next)


def cleanup_output_files(output_path: str, ta_name: str) -> None:
    addon_dir = os.path.join(output_path, ta_name)
    _built_addon_dirs[ta_name] = addon_dir
    lib_dir = os.path.join(addon_dir, "lib")
    _disable_botocore_csm(lib_dir)
    _trim_botocore_models(lib_dir)
    for leftover in ("bin",):  # console scripts pip puts in lib/bin
        shutil.rmtree(os.path.join(lib_dir, leftover), ignore_errors=True)
    if os.path.isdir(os.path.join(addon_dir, "local")):
        shutil.rmtree(os.path.join(addon_dir, "local"))
    _remove_caches_and_binaries(addon_dir)
    _drop_group_world_write(addon_dir)


def additional_packaging(ta_name: str) -> None:
    """Check what the clean-up promises; raises (and so fails the build) when something slipped through."""
    addon_dir = _built_addon_dirs[ta_name]
    problems = []
    if os.path.isdir(os.path.join(addon_dir, "local")):
        problems.append("a local/ folder")
    for dirpath, dirnames, filenames in os.walk(addon_dir):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if os.lstat(path).st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                problems.append(f"group- or world-writable {path}")
            if name == "__pycache__" or name.endswith((".pyc", ".pyo", *COMPILED_SUFFIXES)):
                problems.append(f"compiled or cached {path}")
    with open(os.path.join(addon_dir, "lib", "botocore", "session.py"), encoding="utf-8") as f:
        if "SOCK_DGRAM" in f.read():
            problems.append("botocore client-side monitoring (UDP) still enabled")
    models = set(os.listdir(os.path.join(addon_dir, "lib", "botocore", "data")))
    extra = sorted(m for m in models if os.path.isdir(os.path.join(addon_dir, "lib", "botocore", "data", m)))
    if set(extra) != BOTOCORE_SERVICES_USED:
        problems.append(f"botocore models {extra}, expected {sorted(BOTOCORE_SERVICES_USED)}")
    if problems:
        raise RuntimeError("the built add-on is not clean: " + "; ".join(problems[:10]))
