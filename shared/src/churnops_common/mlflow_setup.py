"""Point MLflow at the right tracking server and artifact store for the mode we run in."""

from __future__ import annotations

import os

from churnops_common.settings import Settings


def configure_mlflow(settings: Settings) -> str:
    """Set the tracking URI (and S3 credentials for artifacts in stack mode); returns the URI."""
    import mlflow

    uri = settings.mlflow_uri()
    # Workers and commands log lines, not progress bars: a bar per artifact download is noise.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if not settings.is_stack:
        settings.churnops_home.mkdir(parents=True, exist_ok=True)
    if settings.mlflow_s3_endpoint_url:
        os.environ["MLFLOW_S3_ENDPOINT_URL"] = settings.mlflow_s3_endpoint_url
        access_key, secret_key = settings.s3_credentials()
        os.environ.setdefault("AWS_ACCESS_KEY_ID", access_key)
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", secret_key)
    mlflow.set_tracking_uri(uri)
    return uri


def ensure_experiment(settings: Settings, name: str) -> str:
    """The experiment's id, created if missing (by this process or, racing, another one).

    Embedded mode keeps artifacts under CHURNOPS_HOME/mlruns; MLflow's default would be an
    `mlruns/` folder in whatever directory the process happens to run in. Stack mode uses the
    server's default artifact root (the MinIO bucket).
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=configure_mlflow(settings))
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = None
    if not settings.is_stack:
        location = (settings.churnops_home / "mlruns").resolve().as_uri()
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except MlflowException:  # created meanwhile by another worker
        again = client.get_experiment_by_name(name)
        if again is None:
            raise
        return str(again.experiment_id)
