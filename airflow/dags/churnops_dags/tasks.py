"""The bodies of the two tasks every ChurnOps DAG has: publish the kickoff, wait for its outcome.

Called from inside `@task` functions, so the imports here run on a worker, never at parse time.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import PokeReturnValue

    from churnops_common.settings import Settings

log = logging.getLogger(__name__)


def settings_or_fail() -> Settings:
    """The platform settings; a configuration error fails the task at once (no retries)."""
    from airflow.sdk.exceptions import AirflowFailException

    from churnops_common.settings import ConfigError
    from churnops_dags.kickoff import platform_settings

    try:
        return platform_settings()
    except ConfigError as exc:
        raise AirflowFailException(str(exc)) from exc


def publish_kickoff(
    event_type: str, fields: Mapping[str, Any] | None = None, discriminator: str = ""
) -> dict[str, Any]:
    """Publish this DAG run's kickoff event (once per run, or per `discriminator` when a run
    publishes several); returns the XCom for the wait."""
    from airflow.sdk import get_current_context

    from churnops_dags.kickoff import build_event, publish_once

    context = get_current_context()
    dag_run = context["dag_run"]
    event = build_event(event_type, dag_run.dag_id, dag_run.run_id, fields or {}, discriminator)
    publication = publish_once(event, settings_or_fail())
    log.info(
        "%s %s (correlation id %s): %s",
        event.event_type,
        event.event_id,
        event.correlation_id,
        publication.reason,
    )
    return publication.to_xcom()


def poke_outcome(publication: Mapping[str, Any]) -> PokeReturnValue:
    """One poll of the ledger: done, still waiting, or failed for good (no Airflow retry)."""
    from airflow.sdk import PokeReturnValue
    from airflow.sdk.exceptions import AirflowFailException

    from churnops_dags.kickoff import Publication, check_outcome

    state = check_outcome(Publication.from_xcom(publication), settings_or_fail())
    log.info("%s %s: %s", publication["event_type"], publication["event_id"], state.summary())
    if state.verdict == "failed":
        reasons = "; ".join(f"{task}: {error}" for task, error in state.errors.items())
        raise AirflowFailException(
            f"{publication['event_type']} {publication['event_id']} was dead-lettered ({reasons});"
            " see monitoring.dead_letters, fix the cause, then trigger a new run"
        )
    return PokeReturnValue(is_done=state.verdict == "done", xcom_value=state.to_xcom())
