"""Celery app of the ingest service: `celery -A churnops_ingest.worker:app worker -Q ingest`."""

from churnops_common.celery_app import create_worker_app
from churnops_ingest.handlers import HANDLERS

app = create_worker_app("ingest", HANDLERS)
