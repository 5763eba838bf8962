"""Binary targets and the `churnops train` command's errors and JSON line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import joblib
import pandas as pd
import pytest

from churnops_common.cli import main
from churnops_common.synthetic import generate
from churnops_trainer.target import TargetError, binary_target


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0, 1, 1, 0], [0, 1, 1, 0]),
        (["Yes", "no", " YES ", "No"], [1, 0, 1, 0]),
        ([True, False, True, True], [1, 0, 1, 1]),
        (["true", "FALSE", "1", "0"], [1, 0, 1, 0]),
        ([1.0, 0.0, 0.0, 1.0], [1, 0, 0, 1]),
    ],
)
def test_binary_targets_in_every_spelling(values: list[object], expected: list[int]) -> None:
    frame = pd.DataFrame({"y": values})
    assert binary_target(frame, "y").tolist() == expected


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["a", "b", "a"], "outside the target vocabulary"),
        ([0, 1, 2], "outside the target vocabulary"),
        ([1, 1, 1], "only one class"),
        ([1, None, 0], "missing value"),
    ],
)
def test_non_binary_targets_are_refused_clearly(values: list[object], message: str) -> None:
    with pytest.raises(TargetError, match=message):
        binary_target(pd.DataFrame({"y": values}), "y")


def test_missing_target_column_names_the_columns() -> None:
    with pytest.raises(TargetError, match="'churn' not found; columns are: a, b"):
        binary_target(pd.DataFrame({"a": [1], "b": [2]}), "churn")


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_errors_are_one_line_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "d.csv"
    generate(200, seed=1).to_csv(data, index=False)
    (tmp_path / "empty.csv").write_text("")
    cases = [
        (["train", "--data", str(data), "--target", "region"], "outside the target vocabulary"),
        (["train", "--data", str(tmp_path / "nope.csv"), "--target", "churned"], "does not exist"),
        (["train", "--data", str(data), "--target", "Churned"], "did you mean 'churned'?"),
        (
            ["train", "--data", str(tmp_path / "empty.csv"), "--target", "churned"],
            "rejected: empty file",
        ),
        (
            ["train", "--data", str(data), "--target", "churned", "--drop", "nope"],
            "nope not in the --data file",
        ),
        # The first accepted training set fixed the contract: another target is another model.
        (["train", "--data", str(data), "--target", "region"], "train it with --name"),
    ]
    for args, message in cases:
        code, _, err = _run(args, capsys)
        assert code == 2, args
        assert message in " ".join(err.split()), err
        assert "Traceback" not in err


def test_cli_trains_and_prints_the_json_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mlflow_template: Path
) -> None:
    # The CLI's embedded MLflow store lives at $CHURNOPS_HOME/mlflow.db: start from a migrated one.
    home = tmp_path / "home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(mlflow_template, home / "mlflow.db")
    data, holdout = tmp_path / "d.parquet", tmp_path / "h.csv"
    frame = generate(1200, seed=4)
    frame["churned"] = frame["churned"].map({1: "yes", 0: "no"})
    # Columns the contract keeps out of the model: a row number and free text.
    frame.insert(0, "row", range(1, len(frame) + 1))
    frame["note"] = [f"called on day {i}" for i in range(len(frame))]
    frame.iloc[:900].to_parquet(data, index=False)
    frame.iloc[900:].to_csv(holdout, index=False)
    code, out, err = _run(
        [
            "train",
            "--data",
            str(data),
            "--target",
            "churned",
            "--id",
            "customer_id",
            "--holdout",
            str(holdout),
            "--trials",
            "2",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert {
        "holdout",
        "model_name",
        "calibration",
        "model_version",
        "promoted",
        "best_family",
        "contract",
        "baseline_version",
        "event",
        "workers_notified",
        "notice",
    } <= set(result)
    assert result["contract"]["target"] == "churned" and result["contract"]["positive"] == "yes"
    assert result["contract"]["id_column"] == "customer_id" and result["baseline_version"] >= 1
    assert result["contract"]["not_features"] == {"row": "row_number", "note": "text"}
    (pipeline_file,) = home.glob("objects/models/pipelines/*/v1/pipeline.joblib")
    learned = joblib.load(pipeline_file).input_columns
    assert {"row", "note", "customer_id", "churned"}.isdisjoint(learned) and len(learned) == 14
    # Embedded mode has no workers to tell: this process's own stages handle the decision.
    assert result["event"] == "ModelPromoted" and result["workers_notified"] is False
    assert "handled by this process's stages" in result["notice"]
    assert set(result["holdout"]) == {"roc_auc", "pr_auc", "log_loss", "brier", "ece"} | {
        "empc",
        "mp",
        "contact_rate",
        "optimal_threshold",
    }
    assert set(result["calibration"]) == {"method", "before", "after"}
    assert result["calibration"]["after"]["ece"] == result["holdout"]["ece"]
    assert result["model_version"] == "1" and result["promoted"] is True
    assert result["best_family"] in {"lightgbm", "xgboost"}
    assert 0.6 < result["holdout"]["roc_auc"] <= 1.0


@pytest.mark.services
def test_stack_mode_publishes_the_decision_to_the_workers(redis_url: str) -> None:
    """`churnops train` in stack mode: ModelPromoted reaches the scorer's queue over real Redis."""
    import base64

    from redis import Redis

    from churnops_common.events import ModelPromoted, RetrainRequested, parse_event
    from churnops_common.settings import Settings
    from churnops_trainer.cli import notify

    broker = redis_url.rsplit("/", 1)[0] + "/12"  # the trainer tests' own Redis database
    queues = ("scorer", "quality", "monitor", "trainer")
    client = Redis.from_url(broker)
    client.delete(*queues)
    answer = RetrainRequested(reason="manual").derive(
        ModelPromoted,
        model_name="churn-model",
        model_version="3",
        model_uri="models:/churn-model/3",
        challenger_pr_auc=0.71,
    )
    try:
        embedded = Settings(churnops_mode="embedded", redis_url=broker, _env_file=None)
        assert notify(embedded, answer) == (
            False,
            f"embedded mode: ModelPromoted {answer.event_id} handled by this process's stages",
        )
        assert client.llen("scorer") == 0

        stack = Settings(churnops_mode="stack", redis_url=broker, _env_file=None)
        notified, notice = notify(stack, answer)
        assert notified and answer.event_id in notice
        bodies = {
            queue: [
                json.loads(base64.b64decode(json.loads(raw)["body"]))[0][0]
                for raw in client.lrange(queue, 0, -1)
            ]
            for queue in queues
        }
        (to_scorer,) = bodies["scorer"]
        assert parse_event(to_scorer) == answer
        assert len(bodies["quality"]) == 1 and len(bodies["monitor"]) == 1
        assert bodies["trainer"] == []
    finally:
        client.delete(*queues)
