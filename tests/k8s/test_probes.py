"""The workers' probe, run as the kubelet runs it, against a real Celery node over real Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.k8s.manifests import Rendered, pod_spec

pytestmark = pytest.mark.services


@pytest.fixture
def node(redis_url: str) -> Iterator[tuple[str, str]]:
    """A Celery worker whose node name is celery@<a pod-like hostname>: (hostname, broker)."""
    broker = redis_url.rsplit("/", 1)[0] + "/7"
    hostname = f"churnops-probe-{uuid.uuid4().hex[:8]}"
    # Only the node's control channel matters to the probe: Celery's default app serves it.
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-b", broker, "worker", "-Q", f"probe-{hostname}",
         "-n", f"celery@{hostname}", "--pool", "solo", "--without-mingle", "--without-gossip",
         "--loglevel", "WARNING"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield hostname, broker
    finally:
        process.terminate()
        process.wait(timeout=30)
        client = redis.Redis.from_url(broker)
        for key in client.scan_iter(match=f"*{hostname}*"):  # the queue's bindings, ours only
            client.delete(key)


def _probe(script: str, hostname: str, broker: str) -> int:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOSTNAME": hostname,
        "REDIS_URL": broker,
    }
    run = subprocess.run(["sh", "-c", script], env=env, capture_output=True, check=False)
    return run.returncode


def test_the_probe_passes_for_its_own_node_only(prod: Rendered, node: tuple[str, str]) -> None:
    hostname, broker = node
    [container] = pod_spec(prod.workers()["scorer"])["containers"]
    shell, flag, script = container["livenessProbe"]["exec"]["command"]
    assert (shell, flag) == ("sh", "-c")
    # The same command with a shorter wait for replies, so a miss costs 2 s here, not 10.
    assert "--timeout 10" in script
    script = script.replace("--timeout 10", "--timeout 2")
    deadline = time.monotonic() + 60
    while _probe(script, hostname, broker) != 0:  # the worker takes a few seconds to start
        assert time.monotonic() < deadline, "the probe never saw its own node"
    # Another pod's probe (another HOSTNAME) must not be satisfied by this node.
    assert _probe(script, f"{hostname}-other", broker) != 0
