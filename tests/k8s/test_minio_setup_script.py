"""deploy/k8s/base/minio-setup.sh, run by sh with a recording `mc` first on PATH.

No MinIO client or server can be installed on these machines: this checks the script's own
logic (the calls it makes, the policy it writes, the errors it tolerates), not MinIO's answers.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from churnops_common.settings import Settings
from tests.k8s.manifests import K8S

SCRIPT = K8S / "base" / "minio-setup.sh"
BUCKET_FIELDS = (
    "minio_landing_bucket",
    "s3_artifact_bucket",
    "minio_models_bucket",
    "minio_reports_bucket",
    "minio_predictions_bucket",
)
# Records each call; `admin policy attach` answers as $ATTACH says (ok, already, fail).
FAKE_MC = """#!/bin/sh
echo "$*" >>"$MC_LOG"
case "$*" in
    "admin policy attach"*)
        case "$ATTACH" in
            already) echo "mc: <ERROR> The policy change is already in effect." >&2; exit 1 ;;
            fail) echo "mc: <ERROR> Access denied." >&2; exit 1 ;;
        esac ;;
esac
"""


def _run(
    tmp_path: Path, attach: str, **extra: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "mc").write_text(FAKE_MC)
    (bin_dir / "mc").chmod(0o755)
    log = tmp_path / f"mc-{attach}.log"
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "MC_LOG": str(log),
        "ATTACH": attach,
        "MINIO_ADMIN_USER": "admin-test",
        "MINIO_ADMIN_PASSWORD": "admin-test-secret",
        "MINIO_ROOT_USER": "churnops-test",
        "MINIO_ROOT_PASSWORD": "churnops-test-secret",
        "MINIO_ENDPOINT": "s3.example.internal:9000",
        "MINIO_NOTIFY_TARGET_ID": "1",
        "TMPDIR": str(tmp_path),
        **extra,
    }
    # The script writes its policy under $TMPDIR (the Job: /tmp, an emptyDir): read it back.
    done = subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, check=False)
    calls = log.read_text().splitlines() if log.exists() else []
    return done, calls


def _policy(calls: list[str]) -> dict[str, object]:
    [create] = [c for c in calls if c.startswith("admin policy create")]
    return json.loads(Path(create.split()[-1]).read_text())  # type: ignore[no-any-return]


def test_it_makes_each_bucket_a_user_limited_to_them_and_the_notification(tmp_path: Path) -> None:
    done, calls = _run(tmp_path, "ok")
    assert done.returncode == 0, done.stderr
    assert calls[0].startswith("alias set churnops http://s3.example.internal:9000 admin-test ")
    buckets = [Settings.model_fields[f].default for f in BUCKET_FIELDS]
    assert [c for c in calls if c.startswith("mb ")] == [
        f"mb --ignore-existing churnops/{b}" for b in buckets
    ]
    [statement] = _policy(calls)["Statement"]  # type: ignore[misc]
    assert statement["Resource"] == [
        arn for b in buckets for arn in (f"arn:aws:s3:::{b}", f"arn:aws:s3:::{b}/*")
    ]
    assert "admin user add churnops churnops-test churnops-test-secret" in calls
    assert "admin policy attach churnops churnops --user churnops-test" in calls
    assert (
        "event add churnops/landing arn:minio:sqs::1:redis --event put --ignore-existing" in calls
    )


def test_it_can_run_again(tmp_path: Path) -> None:
    done, _ = _run(tmp_path, "already")
    assert done.returncode == 0, done.stderr


def test_a_real_error_stops_it(tmp_path: Path) -> None:
    done, calls = _run(tmp_path, "fail")
    assert done.returncode != 0
    assert "Access denied" in done.stderr
    assert not any(c.startswith("event add") for c in calls)


@pytest.mark.parametrize(("secure", "scheme"), [("true", "https"), ("false", "http")])
def test_it_speaks_tls_when_told(tmp_path: Path, secure: str, scheme: str) -> None:
    done, calls = _run(tmp_path, "ok", MINIO_SECURE=secure)
    assert done.returncode == 0, done.stderr
    assert calls[0].startswith(f"alias set churnops {scheme}://s3.example.internal:9000 ")
