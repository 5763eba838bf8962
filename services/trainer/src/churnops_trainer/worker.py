"""Celery app of the trainer service: `celery -A churnops_trainer.worker:app worker -Q trainer`."""

from churnops_common.celery_app import create_worker_app
from churnops_trainer.handlers import HANDLERS

app = create_worker_app("trainer", HANDLERS)
