"""Stand-in for ``splunk.clilib.bundle_paths``: paths under ``$SPLUNK_HOME``."""

import os
from typing import Sequence


def make_splunkhome_path(parts: Sequence[str]) -> str:
    home = os.path.normpath(os.environ["SPLUNK_HOME"])
    path = os.path.normpath(os.path.join(home, *parts))
    if os.path.commonpath([home, path]) != home:
        raise ValueError(f"{path} is outside SPLUNK_HOME")
    return path
