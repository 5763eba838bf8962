"""Celery app of the scorer service: `celery -A churnops_scorer.worker:app worker -Q scorer`."""

from churnops_common.celery_app import create_worker_app
from churnops_scorer.handlers import HANDLERS

app = create_worker_app("scorer", HANDLERS)
