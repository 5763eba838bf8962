"""The embedded registry read without importing MLflow, for commands that start cold.

Importing MLflow and opening its store costs a command seconds before it reads a row, which is
more than scoring a large file takes. In embedded mode the registry is a SQLite file in
CHURNOPS_HOME and the champion's files never change after registration, so two reads serve a
command without MLflow:

- **The alias.** `registered_model_aliases` of that file, read-only, in one query. MLflow owns
  the schema: when the query does not fit it (an upgrade renamed something) or the answer is
  not one row, the caller asks MLflow as before. A test compares both answers.
- **The files.** A verified copy of a version's model directory under
  `CHURNOPS_HOME/cache/models/`, written after a normal (MLflow) load verified them. It is
  trusted only while its digest equals the one on the version's promotion record in the
  monitoring database (hashed again at every load), exactly as a download is checked; without
  a promotion record the caller loads through MLflow.
- **The scoring form.** Beside a verified copy, the pipeline with its trees already compiled
  (`scoring_form`), so a command need not import the model's own library to unpickle it. It
  is trusted only while the copy's files match the promotion record and the form's bytes
  match its own row in the monitoring database.

In stack mode neither applies: workers keep the champion in memory between batches, and the
registry is a server.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from churnops_common.ml.integrity import ArtifactDigest, ModelIntegrityError, digest_dir
from churnops_common.ml.pipeline import ChurnPipeline
from churnops_common.settings import Settings
from churnops_scorer import scoring_form

log = logging.getLogger(__name__)

SQLITE_PREFIX = "sqlite:///"
RECORD_FILE = "churnops-cache.json"  # beside the files; not part of the digest's files
_ALIAS_QUERY = "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?"


def _registry_file(settings: Settings) -> Path | None:
    """The embedded registry's SQLite file, or None when the registry is anything else."""
    uri = settings.mlflow_uri()
    if settings.is_stack or not uri.startswith(SQLITE_PREFIX):
        return None
    path = Path(uri[len(SQLITE_PREFIX) :])
    return path if path.is_file() else None


def alias_version(settings: Settings, alias: str) -> tuple[bool, str | None]:
    """(answered, version) of `alias` on the configured model, read from the SQLite registry.

    `answered` is False when this read cannot say (not embedded, no file, a schema it does not
    fit, several rows): ask MLflow then. (True, None) means the alias is not set."""
    path = _registry_file(settings)
    if path is None:
        return False, None
    try:
        # Read-only; MLflow may write meanwhile, and SQLite's locking applies.
        # closing(): sqlite3's own context manager ends a transaction, not the connection.
        with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=5)) as conn:
            rows = conn.execute(_ALIAS_QUERY, (settings.mlflow_model_name, alias)).fetchall()
    except sqlite3.Error as exc:
        log.info("registry alias not read directly (%s): asking MLflow", exc)
        return False, None
    if len(rows) > 1:  # aliases in several MLflow workspaces: MLflow knows which is ours
        return False, None
    return True, (str(rows[0][0]) if rows else None)


@dataclass(frozen=True)
class CachedVersion:
    pipeline: Any
    holdout_pr_auc: float | None


def _folder(settings: Settings, name: str, version: str) -> Path:
    return settings.churnops_home / "cache" / "models" / name / f"v{version}"


def load_cached(
    settings: Settings,
    name: str,
    version: str,
    expected: ArtifactDigest | None,
    engine: Engine | None = None,
) -> CachedVersion | None:
    """The version from its verified local copy, or None (no copy, no record to check it
    against, or a copy that no longer matches the record: removed, and loaded as usual).
    With the monitoring database (`engine`), from the copy's scoring form when its record
    vouches for it, else from the files, then keeping their form for the next command."""
    folder = _folder(settings, name, version)
    if settings.is_stack or expected is None or not (folder / RECORD_FILE).is_file():
        return None
    files = folder / "files"
    if digest_dir(files) != expected:  # its form goes with it: it was built from these files
        log.warning("cached copy of %s v%s differs from its record: removed", name, version)
        shutil.rmtree(folder, ignore_errors=True)
        return None
    pr_auc = json.loads((folder / RECORD_FILE).read_text()).get("holdout_pr_auc")
    holdout = float(pr_auc) if pr_auc is not None else None
    if engine is not None:
        formed = scoring_form.load(
            engine, folder, name, version, expected, lambda: _verified_model(files, expected)
        )
        if formed is not None:
            return CachedVersion(formed, holdout)
    pipeline = _unpickle(files)
    if pipeline is None:
        return None
    if engine is not None:
        scoring_form.store(engine, folder, name, version, expected, pipeline)
    return CachedVersion(pipeline, holdout)


def keep_form(
    settings: Settings,
    engine: Engine | None,
    name: str,
    version: str,
    expected: ArtifactDigest | None,
    pipeline: Any,
) -> None:
    """After a verified download kept as a copy: keep its scoring form too (embedded mode)."""
    folder = _folder(settings, name, version)
    if settings.is_stack or engine is None or expected is None:
        return
    if (folder / RECORD_FILE).is_file():
        scoring_form.store(engine, folder, name, version, expected, pipeline)


def _verified_model(files: Path, expected: ArtifactDigest) -> Any:
    """The model itself, for a pipeline loaded from its scoring form: from the copy's files,
    verified again as they are read."""
    if digest_dir(files) != expected:
        raise ModelIntegrityError(f"the local model copy in {files} differs from its record")
    pipeline = _unpickle(files)
    if not isinstance(pipeline, ChurnPipeline):
        raise ModelIntegrityError(f"the local model copy in {files} holds no ChurnPipeline")
    return pipeline.model


def _unpickle(files: Path) -> Any:
    """The sklearn flavour's pickle, as `mlflow.sklearn.load_model` reads it (None: a format
    this reader does not know; MLflow loads it then)."""
    import yaml

    flavor = (yaml.safe_load((files / "MLmodel").read_text()) or {}).get("flavors", {})
    sklearn = flavor.get("sklearn") or {}
    pickled, form = sklearn.get("pickled_model"), sklearn.get("serialization_format")
    if not isinstance(pickled, str) or form not in {"cloudpickle", "pickle"}:
        return None
    target = (files / pickled).resolve()
    if not target.is_relative_to(files.resolve()):  # a path out of the verified folder
        return None
    import cloudpickle

    with target.open("rb") as handle:
        return cloudpickle.load(handle)  # its digest was just checked


def store_copy(
    settings: Settings, name: str, version: str, files: Path, holdout_pr_auc: float | None
) -> None:
    """Keep a verified download for the next command (embedded mode; best effort)."""
    if settings.is_stack:
        return
    folder = _folder(settings, name, version)
    partial = folder.with_name(f".{folder.name}.partial")
    try:
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(files, partial / "files")
        record = {"model": name, "version": version, "holdout_pr_auc": holdout_pr_auc}
        (partial / RECORD_FILE).write_text(json.dumps(record))
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
    except OSError as exc:  # a full or read-only disk costs the next command time, no more
        log.info("model copy not cached (%s)", exc)
        shutil.rmtree(partial, ignore_errors=True)
