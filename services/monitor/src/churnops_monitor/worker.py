"""Celery app of the monitor service: `celery -A churnops_monitor.worker:app worker -Q monitor`."""

from churnops_common.celery_app import create_worker_app
from churnops_monitor.handlers import HANDLERS

app = create_worker_app("monitor", HANDLERS)
