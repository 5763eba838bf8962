"""The champion model: loaded from the registry alias only, cached per worker process, swapped
when the alias moves.

Every batch asks the registry which version the `champion` alias names (one cheap call) and
reloads only when that changed. So a replica that never saw the ModelPromoted event (another
replica took it off the queue) still swaps, and nothing but the alias's version is ever loaded:
URIs inside events are never trusted.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from churnops_common.errors import PermanentError
from churnops_common.ml.integrity import expected_digest, load_verified, promoted_digest
from churnops_common.ml.pipeline import ChurnPipeline
from churnops_common.mlflow_setup import configure_mlflow
from churnops_common.runtime import Runtime
from churnops_common.settings import Settings

log = logging.getLogger(__name__)

CHAMPION_ALIAS = "champion"
CACHE_KEY = "scorer.champion"
HOLDOUT_METRIC = "holdout_pr_auc"
_LOAD_LOCK = threading.Lock()


class NoChampion(PermanentError):
    """No model carries the champion alias yet."""


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    uri: str
    pipeline: ChurnPipeline
    holdout_pr_auc: float | None = None


def _client(settings: Settings) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=configure_mlflow(settings))


def champion_version(settings: Settings) -> str | None:
    """The version the champion alias names now, or None when there is no champion."""
    from churnops_scorer.local_registry import alias_version

    answered, version = alias_version(settings, CHAMPION_ALIAS)
    if answered:  # embedded mode: read from the registry's file, MLflow not imported
        return version
    from mlflow.exceptions import MlflowException

    try:
        mv = _client(settings).get_model_version_by_alias(
            settings.mlflow_model_name, CHAMPION_ALIAS
        )
    except MlflowException as exc:
        if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            return None
        raise
    return str(mv.version)


def champion(runtime: Runtime) -> LoadedModel:
    """The current champion, from this process's cache when the alias has not moved."""
    settings = runtime.settings
    version = champion_version(settings)
    if version is None:
        raise NoChampion(
            f"no version of {settings.mlflow_model_name!r} has the alias {CHAMPION_ALIAS!r} yet"
        )
    return model_version(runtime, version)


def model_version(runtime: Runtime, version: str) -> LoadedModel:
    """A registered version of the configured model, cached; chunk tasks pin one this way."""
    settings = runtime.settings
    cached = runtime.cache.get(CACHE_KEY)
    if isinstance(cached, LoadedModel) and cached.version == version:
        return cached
    with _LOAD_LOCK:
        loaded = _load_registered(settings, version, runtime.engine)
        if isinstance(cached, LoadedModel):
            log.info("champion swapped: %s v%s -> v%s", loaded.name, cached.version, version)
        runtime.cache[CACHE_KEY] = loaded
    return loaded


def _load_registered(settings: Settings, version: str, engine: Engine | None) -> LoadedModel:
    """One version, its files verified against the digest recorded at registration (and on
    its promotion record when there is one) before anything is unpickled; in embedded mode
    from a verified local copy when the promotion record vouches for it."""
    from churnops_scorer.local_registry import keep_form, load_cached, store_copy

    name = settings.mlflow_model_name
    uri = f"models:/{name}/{version}"
    promoted = promoted_digest(engine, name, version) if engine is not None else None
    cached = load_cached(settings, name, version, promoted, engine)
    if cached is not None and isinstance(cached.pipeline, ChurnPipeline):
        log.info("loaded %s from its verified local copy", uri)
        return LoadedModel(name, version, uri, cached.pipeline, cached.holdout_pr_auc)
    pr_auc = holdout_pr_auc(settings, version)
    pipeline = load_verified(
        settings,
        name,
        version,
        expected_digest(settings, name, version, promoted),
        on_verified=lambda files: store_copy(settings, name, version, files, pr_auc),
    )
    if not isinstance(pipeline, ChurnPipeline):
        raise PermanentError(f"{uri} is a {type(pipeline).__name__}, not a ChurnPipeline")
    log.info("loaded %s", uri)
    keep_form(settings, engine, name, version, promoted, pipeline)
    return LoadedModel(name, version, uri, pipeline, pr_auc)


def holdout_pr_auc(settings: Settings, version: str) -> float | None:
    """The version's holdout PR-AUC: its tag, else its run's metric; None (logged) if neither."""
    try:
        client = _client(settings)
        mv = client.get_model_version(settings.mlflow_model_name, version)
        tag = (mv.tags or {}).get(HOLDOUT_METRIC)
        if tag is not None:
            return float(tag)
        if mv.run_id:
            metric = client.get_run(mv.run_id).data.metrics.get(HOLDOUT_METRIC)
            if metric is not None:
                return float(metric)
    except Exception as exc:  # the performance check is optional; scoring must go on
        log.warning(
            "holdout PR-AUC of v%s unreadable (%s): performance check skipped", version, exc
        )
        return None
    log.info("v%s has no %s tag or run metric: performance check skipped", version, HOLDOUT_METRIC)
    return None


def load_local(path: Path) -> LoadedModel:
    """A pipeline from a local `.joblib` file (the CLI's --model)."""
    import joblib

    try:
        pipeline = joblib.load(path)
    except Exception as exc:  # a pickle's traceback helps nobody on the command line
        raise ValueError(f"{path} is not a readable joblib file: {exc}") from exc
    if not isinstance(pipeline, ChurnPipeline):
        raise ValueError(f"{path} holds a {type(pipeline).__name__}, not a ChurnPipeline")
    return LoadedModel(
        str(pipeline.metadata.get("model_name", path.stem)),
        str(pipeline.metadata.get("model_version", "local")),
        str(path),
        pipeline,
    )


def load_uri(settings: Settings, uri: str) -> LoadedModel:
    """A registered version from an MLflow URI (`models:/name@alias`, `models:/name/3`),
    verified like every registry load; run URIs carry no recorded digest and are refused."""
    if not uri.startswith("models:/"):
        raise ValueError(
            f"{uri}: only registered versions (models:/name/N or models:/name@alias) can be"
            " loaded, because only they carry a verified artifact digest"
        )
    name, _, ref = uri[len("models:/") :].partition("/")
    if "@" in name:
        name, alias = name.split("@", 1)
        ref = str(_client(settings).get_model_version_by_alias(name, alias).version)
    pipeline = load_verified(settings, name, ref, expected_digest(settings, name, ref))
    if not isinstance(pipeline, ChurnPipeline):
        raise ValueError(f"{uri} is a {type(pipeline).__name__}, not a ChurnPipeline")
    return LoadedModel(name, ref, uri, pipeline)
