"""Where reports live, named after the file they are about (file names are user data).

A landed `new_data/Batch 0005 (drifted).csv` gets its quality report under
`quality/Batch-0005-drifted/<run id>/` in the reports bucket: a person finds it by the file's
name, and the run id keeps two checks of the same name apart.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

QUALITY_PREFIX = "quality"
MAX_LABEL = 80
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_label(key: str) -> str:
    """The file's name without folders and extension, reduced to letters, digits, `._-`."""
    name = PurePosixPath(key).name
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    label = _UNSAFE.sub("-", stem).strip(".-_")[:MAX_LABEL].strip(".-_")
    return label or "file"


def quality_folder(key: str, run_id: str) -> str:
    """The key prefix (no trailing slash) of one quality run's report and its inputs."""
    return f"{QUALITY_PREFIX}/{file_label(key)}/{_UNSAFE.sub('-', run_id)}"
