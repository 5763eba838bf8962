"""The MLflow run `data_quality_psi` of a quality run: per-feature PSI as metrics.

Cheap and robust: one client call per piece (no global active run, safe in a worker), and any
failure is a logged warning, never a failed quality check. One run per quality run: a retry of
the report task finds the run it already logged (by the `churnops.quality_run_id` tag).
"""

from __future__ import annotations

import logging
import re
import time

from churnops_common.settings import Settings

log = logging.getLogger(__name__)

EXPERIMENT = "data_quality_psi"
RUN_NAME = "data_quality_psi"
_METRIC_SAFE = re.compile(r"[^A-Za-z0-9_\-. /]")


def metric_name(feature: str) -> str:
    return "psi." + _METRIC_SAFE.sub("_", feature)


def log_psi_run(
    settings: Settings, run_id: str, object_uri: str, kind: str, psi: dict[str, float], status: str
) -> str | None:
    """Log the run; returns the MLflow run id, or None when MLflow is off or failed."""
    if not settings.quality_mlflow_enabled or not psi:
        return None
    try:
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.tracking import MlflowClient

        from churnops_common.mlflow_setup import configure_mlflow, ensure_experiment

        experiment_id = ensure_experiment(settings, EXPERIMENT)
        client = MlflowClient(tracking_uri=configure_mlflow(settings))
        tag = f"tags.`churnops.quality_run_id` = '{run_id}'"
        logged = client.search_runs([experiment_id], filter_string=tag, max_results=1)
        if logged:
            return str(logged[0].info.run_id)
        run = client.create_run(
            experiment_id, run_name=RUN_NAME, tags={"churnops.quality_run_id": run_id}
        )
        now = int(time.time() * 1000)
        metrics = [Metric(metric_name(k), float(v), now, 0) for k, v in psi.items()]
        metrics.append(Metric("max_psi", max(psi.values()), now, 0))
        params = [Param("object", object_uri[:500]), Param("kind", kind), Param("status", status)]
        client.log_batch(
            run.info.run_id, metrics=metrics, params=params, tags=[RunTag("churnops.kind", kind)]
        )
        client.set_terminated(run.info.run_id)
    except Exception as exc:  # MLflow down or misconfigured: the check itself stands
        log.warning("MLflow run %s not logged: %s", RUN_NAME, f"{type(exc).__name__}: {exc}"[:300])
        return None
    return str(run.info.run_id)
