"""The `churnops` command. Shared commands live here; services add theirs via entry points."""

from __future__ import annotations

import json
import logging
import re
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from churnops_common.settings import ConfigError, Settings, get_settings

app = typer.Typer(
    name="churnops",
    help="ChurnOps: event-driven churn prediction. Embedded mode needs nothing but Python.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The monitoring database.", no_args_is_help=True)
app.add_typer(db_app, name="db")

# soft_wrap: an error stays on one line however narrow the terminal (or a pipe) is.
# markup off: what is printed holds user text (column names, file names, errors), and a
# column named `[/x]` must print as itself, not crash Rich's markup parser; colour goes
# through `style=` or Text.
# emoji off: a `:smile:` in user text is text, not a picture.
console = Console(stderr=True, soft_wrap=True, markup=False, emoji=False)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")]


ModelNameOption = Annotated[
    str | None,
    typer.Option(
        "--name",
        help="Model name (default: MLFLOW_MODEL_NAME). Each name has its own data contract,"
        " baseline and champion: train another dataset under another name.",
    ),
]


@app.callback()
def _options(
    verbose: Annotated[
        bool,
        typer.Option(
            "-v",
            "--verbose",
            help="Log everything, library warnings included (CHURNOPS_LOG_LEVEL picks a level).",
        ),
    ] = False,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            help="Embedded mode's state folder for this command (default: CHURNOPS_HOME, else"
            " .churnops); `--home .churnops/demo` looks at the demo's.",
        ),
    ] = None,
) -> None:
    """ChurnOps: event-driven churn prediction. Embedded mode needs nothing but Python."""
    import os

    from churnops_common.logs import configure_cli_logging

    configure_cli_logging(verbose)
    if verbose:
        from churnops_common.contract import list_every_column

        list_every_column()
    if home is not None:
        os.environ["CHURNOPS_HOME"] = str(home)
        get_settings.cache_clear()


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""


def settings_for(name: str | None) -> Settings:
    """The settings, for model `name` when one is given (`--name`)."""
    settings = get_settings()
    return settings.model_copy(update={"mlflow_model_name": name}) if name else settings


def contract_settings(name: str | None) -> tuple[Settings, Any]:
    """(settings under the model's data contract, the contract or None before any training)."""
    from churnops_common.contract import apply_contract, load_contract
    from churnops_common.storage import object_store_from_settings

    settings = settings_for(name)
    contract = load_contract(object_store_from_settings(settings), settings)
    return apply_contract(settings, contract), contract


def emit(result: dict[str, Any], as_json: bool, human: Callable[[dict[str, Any]], None]) -> None:
    """Human output on stderr-friendly rich text, or exactly one JSON line on stdout."""
    if as_json:
        print(json.dumps(result, default=str))
    else:
        human(result)


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="Output file, .csv or .parquet.")],
    rows: Annotated[int, typer.Option(min=1, help="Number of customers.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same file.")] = 0,
    drift: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="0 = reference, 1 = drifted.")
    ] = 0.0,
    loyalty: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Move the population toward established customers (0 = none, 1 = most);"
            " who churns, given their columns, stays the same (a covariate shift).",
        ),
    ] = 0.0,
    no_target: Annotated[bool, typer.Option("--no-target", help="Leave out `churned`.")] = False,
    levels: Annotated[
        int,
        typer.Option(min=0, help="Add `area_code`, a categorical with this many levels (0: none)."),
    ] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Write a deterministic synthetic churn table (columns: data/data_descriptions.csv)."""
    from churnops_common.synthetic import generate as make

    frame = make(rows, seed=seed, drift=drift, levels=levels, loyalty=loyalty)
    if no_target:
        frame = frame.drop(columns=["churned"])
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        frame.to_parquet(out, index=False)
    elif out.suffix == ".csv":
        frame.to_csv(out, index=False)
    else:
        raise UserError(f"--out must end in .csv or .parquet, not {out.suffix or 'nothing'!r}")
    result = {
        "out": str(out),
        "rows": rows,
        "seed": seed,
        "drift": drift,
        "loyalty": loyalty,
        "levels": levels,
        "churn_rate": None if no_target else round(float(frame["churned"].mean()), 4),
    }
    emit(result, as_json, lambda r: console.print(f"wrote {r['rows']} rows to {r['out']}"))


@db_app.command("upgrade")
def db_upgrade(as_json: JsonFlag = False) -> None:
    """Apply the numbered migrations in sql/ (Postgres) or create the tables (SQLite)."""
    from churnops_common.db.engine import make_engine
    from churnops_common.db.migrations import enable_grafana_login, upgrade

    settings = get_settings()
    engine = make_engine(settings.monitoring_url())
    applied = upgrade(engine)
    grafana = enable_grafana_login(engine, settings.grafana_db_password.get_secret_value())
    result = {
        "applied": applied,
        "database": engine.url.render_as_string(hide_password=True),
        "grafana_login": grafana,
    }
    emit(
        result,
        as_json,
        lambda r: console.print(
            f"applied {', '.join(r['applied'])}" if r["applied"] else "monitoring schema up to date"
        ),
    )


# Query parameters that carry a credential (`postgresql://u@h/db?password=...`).
_SECRET_QUERY = re.compile(
    r"(?i)([?&](?:password|passwd|pwd|secret|token|access_key|secret_key|sslpassword)=)[^&#]*"
)


def _mask(key: str, value: Any) -> Any:
    """Secrets as stars; passwords in URLs (userinfo or query) hidden; a webhook URL reduced
    to its host."""
    if not isinstance(value, str) or not value:
        return value
    if value == "**********":  # pydantic's SecretStr
        return value
    if key == "alert_webhook_url":  # the path of a webhook URL is its secret
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        return f"{parts.scheme}://{parts.hostname}/***"
    if "://" in value and "@" in value:
        from sqlalchemy.engine import make_url

        try:
            value = make_url(value).render_as_string(hide_password=True)
        except Exception:
            value = value.split("://", 1)[0] + "://***@" + value.rsplit("@", 1)[1]
    return _SECRET_QUERY.sub(r"\1***", value) if "://" in value else value


@app.command()
def config(as_json: JsonFlag = False) -> None:
    """Show the effective settings (secrets masked)."""
    settings = get_settings()
    values = {
        key: _mask(key, value) for key, value in json.loads(settings.model_dump_json()).items()
    }

    def show(result: dict[str, Any]) -> None:
        for key, value in result.items():
            console.print(f"{key} = {value}")

    emit(values, as_json, show)


@app.command()
def bridge(
    as_json: JsonFlag = False,
) -> None:
    """Run the MinIO bridge: Redis notifications in, DataLanded events out (until stopped)."""
    from redis import Redis

    from churnops_common.bridge import Bridge, wait_for_redis
    from churnops_common.bus.celery_bus import CeleryBus
    from churnops_common.celery_app import make_celery

    settings = get_settings()
    redis = Redis.from_url(settings.redis_url)
    wait_for_redis(redis)
    worker = Bridge(
        redis,
        CeleryBus(make_celery("churnops-bridge", settings)),
        settings.minio_notify_redis_key,
        settings.minio_landing_bucket,
    )
    from churnops_common.db.engine import make_engine
    from churnops_common.metrics import serve_bridge_metrics

    serve_bridge_metrics(settings, worker, make_engine(settings.monitoring_url()))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    logging.getLogger(__name__).info("bridge watching %s", settings.minio_notify_redis_key)
    stats = worker.run(stop)
    emit(vars(stats), as_json, lambda r: console.print(f"bridge stopped: {r}"))


@app.command()
def drop(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    kind: Annotated[str, typer.Option(help="new_data, labels or training.")] = "new_data",
    name: Annotated[str | None, typer.Option(help="Object name (default: the file's).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Drop a file into the landing bucket. Embedded mode processes it at once."""
    from churnops_common.bridge import KIND_PREFIXES
    from churnops_common.events import DataKind

    kinds: dict[str, DataKind] = {k.rstrip("/"): v for k, v in KIND_PREFIXES.items()}
    if kind not in kinds:
        raise UserError(f"--kind must be one of {', '.join(kinds)}, not {kind!r}")
    settings = get_settings()
    if settings.is_stack:
        from churnops_common.storage import object_store_from_settings

        key = f"{kind}/{name or file.name}"
        info = object_store_from_settings(settings, upload=True).put_file(
            settings.minio_landing_bucket, key, file
        )
        result: dict[str, Any] = {
            "object": info.uri,
            "etag": info.etag,
            "note": "MinIO's notification starts the pipeline",
        }
        lines = [f"uploaded {file.name} to {info.uri}: MinIO's notification starts the pipeline"]
    else:
        from churnops_common.embedded import EmbeddedPlatform

        platform = EmbeddedPlatform(settings)
        event = platform.drop(file, kinds[kind], name)
        handled = platform.run()
        result = {
            "object": event.object.uri,
            "etag": event.object.etag,
            "events": [e.event_type for e in platform.bus.published],
            "handled": handled,
        }
        lines = _story(platform.bus.published, handled)
    emit(result, as_json, lambda _: _print_lines(lines))


def _story(events: list[Any], handled: int) -> list[str]:
    from churnops_common.narration import sentences

    told = sentences(events)
    return [*told, f"({handled} task(s) handled)"] if told else [f"{handled} task(s) handled"]


def _print_lines(lines: list[str]) -> None:
    for line in lines:
        console.print(line, highlight=False)


REQUESTS = {
    "sweep": "SweepRequested",
    "quality": "QualityRequested",
    "retrain": "RetrainRequested",
    "monitoring": "MonitoringRequested",
}


@app.command()
def request(
    what: Annotated[str, typer.Argument(help="sweep, quality, retrain or monitoring.")],
    as_json: JsonFlag = False,
) -> None:
    """Publish a kickoff event now, as the Airflow schedules do (retrain: reason=manual)."""
    from churnops_common.events import EVENT_TYPES

    if what not in REQUESTS:
        raise UserError(f"request must be one of {', '.join(REQUESTS)}, not {what!r}")
    fields: dict[str, Any] = {"reason": "manual"} if what == "retrain" else {}
    event = EVENT_TYPES[REQUESTS[what]](**fields)
    result, lines = _publish(event)
    emit(result, as_json, lambda _: _print_lines(lines))


def _publish(event: Any, only_task: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """Stack: send to the workers by task name. Embedded: handle it here and now."""
    settings = get_settings()
    if settings.is_stack:
        from churnops_common.bus.celery_bus import CeleryBus
        from churnops_common.celery_app import make_celery

        bus = CeleryBus(make_celery("churnops-cli", settings))
        if only_task:
            bus.publish_to(event, only_task)
        else:
            bus.publish(event)
        sent = {
            "published": event.event_type,
            "event_id": event.event_id,
            "correlation_id": event.correlation_id,
        }
        return sent, [f"sent {event.event_type} to the workers"]
    from churnops_common.embedded import EmbeddedPlatform

    platform = EmbeddedPlatform(settings)
    if only_task:
        platform.bus.publish_to(event, only_task)
    else:
        platform.publish(event)
    handled = platform.run()
    result = {
        "published": event.event_type,
        "event_id": event.event_id,
        "correlation_id": event.correlation_id,
        "handled": handled,
        "events": [e.event_type for e in platform.bus.published],
    }
    return result, _story(platform.bus.published, handled)


@app.command("dead-letters")
def dead_letters_cmd(
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """List parked messages with the reason each could not be handled."""
    import sqlalchemy as sa

    from churnops_common.db.engine import make_engine
    from churnops_common.db.tables import dead_letters

    engine = make_engine(get_settings().monitoring_url())
    query = sa.select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit)
    with engine.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)]
    for row in rows:
        row.pop("payload")
    result: dict[str, Any] = {"dead_letters": rows}

    def show(r: dict[str, Any]) -> None:
        if not r["dead_letters"]:
            console.print("no dead letters")
        for row in r["dead_letters"]:
            console.print(
                f"#{row['id']} {row['created_at']:%Y-%m-%d %H:%M} {row['task_name']}: "
                f"{row['error']}",
                highlight=False,
            )

    emit(result, as_json, show)


@app.command()
def replay(
    dead_letter_id: Annotated[int, typer.Argument(help="The dead letter's id.")],
    as_json: JsonFlag = False,
) -> None:
    """Deliver a dead-lettered event again to the task that parked it, once the cause is fixed."""
    import sqlalchemy as sa

    from churnops_common.db.engine import make_engine
    from churnops_common.db.tables import dead_letters
    from churnops_common.events import parse_event

    engine = make_engine(get_settings().monitoring_url())
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(dead_letters).where(dead_letters.c.id == dead_letter_id)
        ).one_or_none()
    if row is None:
        raise UserError(f"no dead letter with id {dead_letter_id}")
    try:
        event = parse_event(row.payload)
    except ValueError as exc:
        raise UserError(
            f"dead letter {dead_letter_id} holds an invalid event; it cannot be replayed: {exc}"
        ) from exc
    from churnops_common.db.ledger import Ledger

    # The ledger may hold the parked attempt as handled: forget it, or the replay is skipped.
    Ledger(engine).forget(row.task_name, event.idempotency_key)
    result, lines = _publish(event, only_task=row.task_name)
    emit(result, as_json, lambda _: _print_lines(lines))


DEMO_TRIALS = 10


@app.command()
def demo(
    home: Annotated[
        Path | None, typer.Option(help="Folder for the demo's state (wiped first).")
    ] = None,
    trials: Annotated[
        int, typer.Option(min=1, help="Optuna trials per training (fewer: a quicker demo).")
    ] = DEMO_TRIALS,
    as_json: JsonFlag = False,
) -> None:
    """Run the whole lifecycle in embedded mode and print a summary."""
    import os

    from churnops_common.demo import run_demo

    if "CHURNOPS_LOG_LEVEL" not in os.environ:
        # The progress lines tell the story; service logs only when something goes wrong.
        logging.getLogger().setLevel(logging.WARNING)
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")  # MLflow sets up its own logger
        for chatty in ("mlflow", "weasyprint"):
            logging.getLogger(chatty).setLevel(logging.ERROR)

    # A short search keeps the whole lifecycle within a few minutes on a laptop.
    settings = Settings(
        churnops_mode="embedded",
        churnops_home=home or Path(".churnops") / "demo",
        optuna_n_trials=trials,
    )

    def progress(line: str) -> None:
        console.print(line, highlight=False)

    summary = run_demo(settings, progress)
    emit(summary.to_dict(), as_json, _print_summary)


def _print_summary(result: dict[str, Any]) -> None:
    console.rule("ChurnOps demo")
    for key in (
        "stages",
        "batches_scored",
        "rejected",
        "psi_breaches",
        "estimated_degradations",
        "drifted_pr_auc_estimated",
        "drifted_pr_auc_realized",
        "customers_to_contact",
        "campaign_expected_profit",
        "retrains",
        "promotions",
        "champion_version",
        "events_handled",
        "dead_letters",
        "seconds",
    ):
        console.print(f"{key:>24}: {result[key]}")
    for reason in result["rejections"]:
        console.print(f"{'rejected because':>24}: {reason}")
    console.print(f"{'state kept in':>24}: {result['home']}")
    if result.get("monitoring_report"):
        console.print(f"{'open the report':>24}: {result['monitoring_report']}", highlight=False)
        console.print(f"{'all reports':>24}: {result['monitoring_reports']}", highlight=False)


def _install_plugins() -> None:
    from churnops_common.plugins import register_cli_plugins

    register_cli_plugins(app)


def main(argv: list[str] | None = None) -> int:
    from churnops_common.logs import configure_logging

    configure_logging()
    _install_plugins()
    try:
        # Standalone: typer reports its own usage errors (exit 2) and raises SystemExit.
        app(args=argv, prog_name="churnops")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except (UserError, ConfigError, FileNotFoundError, ValueError) as exc:
        console.print(Text.assemble(("error:", "red"), f" {exc}"), highlight=False)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
