"""A Slack-compatible webhook notifier that never blocks or fails the pipeline.

Every attempt has a short timeout, retries back off, and the whole delivery fits in a fixed
time budget; a failure comes back as a result to record, never as an exception.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

import httpx

log = logging.getLogger(__name__)

BACKOFF_BASE_S = 0.25
# Slack reads `<...>` as a control sequence (`<!channel>` pages everyone, `<url|text>` links);
# its docs ask for exactly these three to be escaped in message text.
_SLACK_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def slack_escape(text: str) -> str:
    """Text as Slack shows it literally: no mentions, no links from user data."""
    return text.translate(_SLACK_ESCAPES)


@dataclass(frozen=True, slots=True)
class Delivery:
    status: Literal["sent", "failed", "skipped"]
    attempts: int = 0
    error: str | None = None


class WebhookNotifier:
    """POSTs `{"text": ...}` (plus any extra fields) to one URL."""

    def __init__(
        self, url: str | None, *, timeout_s: float, max_attempts: int, budget_s: float
    ) -> None:
        self.url = url.strip() if url else None
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.budget_s = budget_s

    def send(self, text: str, extra: dict[str, Any] | None = None) -> Delivery:
        if not self.url:
            return Delivery("skipped", 0, "no ALERT_WEBHOOK_URL set")
        body = {"text": slack_escape(text), **(extra or {})}
        deadline = time.monotonic() + self.budget_s
        error: str | None = "no attempt fitted in the time budget"
        attempts = 0
        with httpx.Client(follow_redirects=False) as client:
            for attempt in range(self.max_attempts):
                remaining = deadline - time.monotonic()
                if remaining <= 0.05:
                    break
                attempts += 1
                error = self._attempt(client, body, min(self.timeout_s, remaining))
                if not error:
                    return Delivery("sent", attempts)
                pause = BACKOFF_BASE_S * 2**attempt
                if attempt + 1 < self.max_attempts and deadline - time.monotonic() > pause:
                    time.sleep(pause)
        log.warning("alert not delivered after %d attempt(s): %s", attempts, error)
        return Delivery("failed", attempts, error)

    def _attempt(self, client: httpx.Client, body: dict[str, Any], timeout: float) -> str | None:
        """None on a 2xx answer, else what went wrong (the URL itself is never logged)."""
        assert self.url is not None
        try:
            response = client.post(self.url, json=body, timeout=timeout)
        except httpx.TimeoutException:
            return f"timed out after {timeout:.1f}s"
        except httpx.HTTPError as exc:
            # A webhook URL is a secret: keep it out of the recorded error.
            return f"{type(exc).__name__}: {exc}".replace(self.url, "<webhook>")[:500]
        if response.is_success:
            return None
        return f"HTTP {response.status_code}: {response.text[:200]}"
