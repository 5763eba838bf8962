"""Model artifacts are verified before they are deserialised.

A registered model is a pickle: whoever can write its files in the artifact store can run code
in every process that loads it. So the trainer records the sha256 and size of what it uploaded
(a version tag, and the `model_promotions` row), and every loader downloads the files, checks
them against that record, and only then unpickles them from the checked local copy. A mismatch
is a permanent failure (`ModelIntegrityError`), never a load.

The digest covers every file of the model directory (MLmodel names the pickle it loads, so it is
part of what must not change), in path order, each with its relative path and size.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from churnops_common.db.tables import model_promotions
from churnops_common.errors import IntegrityError
from churnops_common.mlflow_setup import configure_mlflow
from churnops_common.settings import Settings

SHA256_TAG = "artifact_sha256"
SIZE_TAG = "artifact_size"
# Written by MLflow into the download folder of a `models:/` URI; not part of the artifact.
_DOWNLOAD_ONLY = frozenset({"registered_model_meta"})
_CHUNK = 1 << 20


class ModelIntegrityError(IntegrityError):
    """A model's files are not the ones recorded at registration: it is never loaded; the
    dead-letter path raises an alert (see dispatch)."""


@dataclass(frozen=True, slots=True)
class ArtifactDigest:
    sha256: str
    size: int

    def tags(self) -> dict[str, str]:
        return {SHA256_TAG: self.sha256, SIZE_TAG: str(self.size)}


def digest_dir(folder: Path) -> ArtifactDigest:
    """One sha256 over every file's relative path, size and content, in path order."""
    total = hashlib.sha256()
    size = 0
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in _DOWNLOAD_ONLY)
    for path in files:
        file_digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                file_digest.update(chunk)
        length = path.stat().st_size
        size += length
        relative = path.relative_to(folder).as_posix()
        total.update(f"{relative}\0{length}\0{file_digest.hexdigest()}\n".encode())
    return ArtifactDigest(total.hexdigest(), size)


def _client(settings: Settings) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=configure_mlflow(settings))


def download_version(settings: Settings, name: str, version: str, dest: Path) -> Path:
    """The files of one registered version, downloaded into `dest`."""
    from mlflow.artifacts import download_artifacts

    configure_mlflow(settings)
    return Path(download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=str(dest)))


def record_digest(settings: Settings, name: str, version: str) -> ArtifactDigest:
    """Digest what the registry now serves for a version, and tag the version with it."""
    with tempfile.TemporaryDirectory(prefix="churnops-digest-") as tmp:
        digest = digest_dir(download_version(settings, name, version, Path(tmp)))
    client = _client(settings)
    for key, value in digest.tags().items():
        client.set_model_version_tag(name, version, key, value)
    return digest


def registered_digest(settings: Settings, name: str, version: str) -> ArtifactDigest | None:
    """The digest recorded on the version's tags (None when it carries none)."""
    tags = _client(settings).get_model_version(name, version).tags or {}
    sha, size = tags.get(SHA256_TAG), tags.get(SIZE_TAG)
    if not sha or not size or not size.isdigit():
        return None
    return ArtifactDigest(sha, int(size))


def promoted_digest(engine: Engine, name: str, version: str) -> ArtifactDigest | None:
    """The digest on the version's promotion record (None: no record, or one without it)."""
    query = select(model_promotions.c.artifact_sha256, model_promotions.c.artifact_size).where(
        model_promotions.c.model_name == name, model_promotions.c.challenger_version == version
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None or not row.artifact_sha256 or row.artifact_size is None:
        return None
    return ArtifactDigest(str(row.artifact_sha256), int(row.artifact_size))


def expected_digest(
    settings: Settings, name: str, version: str, promoted: ArtifactDigest | None = None
) -> ArtifactDigest:
    """What the version's files must hash to: the registry tag, which must agree with the
    promotion record when there is one (the tag alone can be edited by anyone who reaches the
    tracking server; the record needs the database)."""
    tagged = registered_digest(settings, name, version)
    uri = f"models:/{name}/{version}"
    if tagged is None and promoted is None:
        raise ModelIntegrityError(
            f"{uri} has no recorded artifact digest ({SHA256_TAG}); it was registered without"
            " one and is not loaded: retrain to register a verifiable version"
        )
    if tagged is not None and promoted is not None and tagged != promoted:
        raise ModelIntegrityError(
            f"{uri}: the registry's artifact digest {tagged.sha256[:12]}... differs from the"
            f" promotion record's {promoted.sha256[:12]}...: not loaded"
        )
    found = promoted or tagged
    assert found is not None
    return found


def load_verified(
    settings: Settings,
    name: str,
    version: str,
    expected: ArtifactDigest,
    on_verified: Callable[[Path], None] | None = None,
) -> Any:
    """Download the version, check its digest, then (only then) unpickle the checked copy;
    `on_verified` sees the checked folder first (the scorer keeps a copy of it)."""
    import mlflow.sklearn

    uri = f"models:/{name}/{version}"
    with tempfile.TemporaryDirectory(prefix="churnops-model-") as tmp:
        local = download_version(settings, name, version, Path(tmp))
        found = digest_dir(local)
        if found != expected:
            raise ModelIntegrityError(
                f"{uri}: artifact sha256 {found.sha256} ({found.size} bytes) differs from the"
                f" recorded {expected.sha256} ({expected.size} bytes): the model files changed"
                " after registration; not loaded"
            )
        if on_verified is not None:
            on_verified(local)
        # MLflow 3.17 refuses to unpickle sklearn-flavour models without this flag; the files
        # were just verified against the registration record.
        os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"
        return mlflow.sklearn.load_model(str(local))
