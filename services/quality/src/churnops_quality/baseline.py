"""The baseline: schema + profile + a stratified sample, versioned in the models bucket.

Each model name has its own baselines, so its own data contract (`churnops_common.contract`).
Layout (models bucket), <model> being the settings' MLFLOW_MODEL_NAME (or `--name`):
    quality/baseline/<model>/current.json          {"version": N, "source": "bucket/key@etag",
                                                    "model_version": "7" | null, ...}
    quality/baseline/<model>/v000N/schema.json     the contract: roles, categories, ranges
    quality/baseline/<model>/v000N/profile.json    fixed bins + reference counts (for PSI)
    quality/baseline/<model>/v000N/sample.parquet  BASELINE_SHARE of the training rows
The pointer is written last, so readers never see half a baseline.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from churnops_common.contract import baseline_prefix, pointer_key
from churnops_common.settings import Settings
from churnops_common.storage import ObjectStore
from churnops_quality.profile import Profile, build_profile
from churnops_quality.schema import Schema, infer_schema

log = logging.getLogger(__name__)

SAMPLE_SEED = 20_240_601


@dataclass(frozen=True)
class Baseline:
    version: int
    source: str
    schema: Schema
    profile: Profile
    # The promoted model whose training data this is (None: built from a landed training set).
    model_version: str | None = None
    model_name: str = ""

    @property
    def prefix(self) -> str:
        return f"{baseline_prefix(self.model_name)}/v{self.version:04d}"


def stratified_sample(frame: pd.DataFrame, share: float, target: str | None) -> pd.DataFrame:
    """`share` of the rows, the same share from each outcome class (deterministic)."""
    if share >= 1:
        return frame
    if target and target in frame.columns:
        parts = [
            group.sample(frac=share, random_state=SAMPLE_SEED)
            for _, group in frame.groupby(frame[target].astype("string"), dropna=False)
        ]
        return pd.concat(parts).sort_index()
    return frame.sample(frac=share, random_state=SAMPLE_SEED).sort_index()


def build_baseline(
    frame: pd.DataFrame,
    settings: Settings,
    source: str,
    version: int,
    model_version: str | None = None,
) -> tuple[Baseline, pd.DataFrame]:
    schema = infer_schema(frame, settings.id_column, settings.target_column, source=source)
    profile = build_profile(frame, schema)
    sample = stratified_sample(frame, settings.baseline_share, schema.target_column)
    name = settings.mlflow_model_name
    return Baseline(version, source, schema, profile, model_version, name), sample


@dataclass(frozen=True)
class Pointer:
    """What `current.json` says, without loading the baseline itself."""

    version: int
    source: str
    model_version: str | None


def current_pointer(store: ObjectStore, settings: Settings) -> Pointer | None:
    bucket, key = settings.minio_models_bucket, pointer_key(settings.mlflow_model_name)
    if not store.exists(bucket, key):
        return None
    pointer = json.loads(store.get_bytes(bucket, key))
    model = pointer.get("model_version")
    return Pointer(int(pointer["version"]), str(pointer["source"]), model and str(model))


def current_version(store: ObjectStore, settings: Settings) -> tuple[int, str] | None:
    """(version, source) of the current baseline, or None when there is none yet."""
    pointer = current_pointer(store, settings)
    return None if pointer is None else (pointer.version, pointer.source)


def load_baseline(
    store: ObjectStore, settings: Settings, cache: dict[str, object] | None = None
) -> Baseline | None:
    """The current baseline, from the per-process cache while the pointer is unchanged."""
    bucket, key = settings.minio_models_bucket, pointer_key(settings.mlflow_model_name)
    info = store.stat(bucket, key)
    if info is None:
        return None
    cache_key = f"quality.baseline:{key}@{info.etag}"
    if cache is not None and isinstance(cache.get(cache_key), Baseline):
        return cache[cache_key]  # type: ignore[return-value]
    pointer = json.loads(store.get_bytes(bucket, key))
    prefix = f"{baseline_prefix(settings.mlflow_model_name)}/v{int(pointer['version']):04d}"
    schema = Schema.model_validate_json(store.get_bytes(bucket, f"{prefix}/schema.json"))
    profile = Profile.model_validate_json(store.get_bytes(bucket, f"{prefix}/profile.json"))
    model = pointer.get("model_version")
    baseline = Baseline(
        int(pointer["version"]),
        str(pointer["source"]),
        schema,
        profile,
        model and str(model),
        settings.mlflow_model_name,
    )
    if cache is not None:
        for key in [k for k in cache if k.startswith("quality.baseline:")]:
            del cache[key]
        cache[cache_key] = baseline
    return baseline


def save_baseline(
    store: ObjectStore, settings: Settings, baseline: Baseline, sample: pd.DataFrame
) -> None:
    bucket = settings.minio_models_bucket
    buffer = io.BytesIO()
    sample.to_parquet(buffer, index=False)
    store.put_bytes(
        bucket,
        f"{baseline.prefix}/sample.parquet",
        buffer.getvalue(),
        "application/vnd.apache.parquet",
    )
    store.put_bytes(
        bucket,
        f"{baseline.prefix}/schema.json",
        baseline.schema.model_dump_json(indent=1).encode(),
        "application/json",
    )
    store.put_bytes(
        bucket,
        f"{baseline.prefix}/profile.json",
        baseline.profile.model_dump_json().encode(),
        "application/json",
    )
    pointer = {
        "version": baseline.version,
        "model_name": settings.mlflow_model_name,
        "contract": baseline.schema.fingerprint,
        "source": baseline.source,
        "model_version": baseline.model_version,
        "created_at": datetime.now(UTC).isoformat(),
        "rows": baseline.profile.rows,
        "sample_rows": len(sample),
    }
    key = pointer_key(settings.mlflow_model_name)
    store.put_bytes(bucket, key, json.dumps(pointer).encode(), "application/json")
    log.info(
        "baseline v%d saved from %s (%d rows, %d features)",
        baseline.version,
        baseline.source,
        baseline.profile.rows,
        len(baseline.profile.features),
    )


def next_version(store: ObjectStore, settings: Settings) -> int:
    current = current_version(store, settings)
    return 1 if current is None else current[0] + 1
