"""Other Python versions on this machine (Splunk 9.x runs 3.9, Splunk 10.x 3.13); pyenv keeps them off PATH."""

import glob
import os
import shutil
import subprocess
from typing import Optional


def python_binary(version: str) -> Optional[str]:
    """A working interpreter for `version` ("3.9"), or None. $TA_TEST_PYTHON39 etc. override the search."""
    candidates = [os.environ.get(f"TA_TEST_PYTHON{version.replace('.', '')}") or ""]
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}*/bin/python{version}")))
    candidates.append(shutil.which(f"python{version}") or "")
    for candidate in candidates:
        if candidate and subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0:
            return candidate
    return None
