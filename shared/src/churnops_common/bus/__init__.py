"""Event buses: Celery over Redis (stack mode) and an in-process FIFO loop (embedded mode)."""

from churnops_common.bus.base import Bus

__all__ = ["Bus"]
