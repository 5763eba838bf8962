"""Binary targets, read with the platform's one target vocabulary (`churnops_common.contract`)."""

from __future__ import annotations

from churnops_common.contract import TargetError, binary_target

__all__ = ["TargetError", "binary_target"]
