"""Work a command hands to a detached process, so the command returns when its answer is ready.

In the stack a follow-up that nobody waits for (the quality report of a file whose verdict is
out, the monitor's label-free estimate of a scored batch) is a task on a worker's queue. A
command on a laptop has no worker, so it hands those deliveries to one child process of its
own, started in a new session so it outlives the command: the same handlers on the same events,
as a worker would run them, with its log under `CHURNOPS_HOME/logs/`. The child rebuilds its
settings from the environment it inherits and the model name the command used, so it works
under the same data contract.

    python -m churnops_common.background < deliveries.json
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from churnops_common.events import Event, parse_event, to_wire
from churnops_common.settings import Settings

LOG_FILE = "background.log"


def log_path(settings: Settings) -> Path:
    return settings.churnops_home / "logs" / LOG_FILE


Delivery = tuple[str, Event]  # (task name, event)


def hand_over(settings: Settings, deliveries: Sequence[Delivery]) -> Path | None:
    """Start one detached process that makes `deliveries` in order, each event to its task;
    returns its log file (None when there was nothing to hand over)."""
    if not deliveries:
        return None
    payload = {
        "model_name": settings.mlflow_model_name,
        "deliveries": [{"task": task, "event": to_wire(event)} for task, event in deliveries],
    }
    log_file = log_path(settings)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        child = subprocess.Popen(  # noqa: S603 - this interpreter, this module, no user input
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=log,
            start_new_session=True,  # not killed with the command's terminal or process group
        )
    assert child.stdin is not None
    child.stdin.write(json.dumps(payload).encode())
    child.stdin.close()
    return log_file


def deliver(payload: dict[str, Any]) -> int:
    """Run the handed-over deliveries in this process; the number delivered."""
    from churnops_common.cli import contract_settings
    from churnops_common.embedded import EmbeddedPlatform
    from churnops_common.routing import subscription_by_task

    settings, _ = contract_settings(str(payload["model_name"]))
    deliveries = [(str(d["task"]), parse_event(d["event"])) for d in payload["deliveries"]]
    services = {subscription_by_task(task).queue for task, _ in deliveries}
    platform = EmbeddedPlatform(settings, services=services, in_stack=True)
    for task, event in deliveries:
        platform.bus.publish_to(event, task)
    return platform.run()


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
    )
    delivered = deliver(json.loads(sys.stdin.read()))
    logging.getLogger(__name__).info("%d handed-over deliveries done", delivered)


if __name__ == "__main__":
    main()
