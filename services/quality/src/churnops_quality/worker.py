"""Celery app of the quality service: `celery -A churnops_quality.worker:app worker -Q quality`."""

from churnops_common.celery_app import create_worker_app
from churnops_quality.handlers import HANDLERS

app = create_worker_app("quality", HANDLERS)
