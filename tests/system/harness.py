"""The stack as local processes, started with the same commands as compose.yaml.

This machine's Postgres (fresh databases for the monitoring schema and MLflow), a private
redis-server started with compose's Redis command (so a scenario can stop and restart it), an S3
server (moto in server mode: MinIO's stand-in), compose's MLflow command on a free local port,
the bridge, and one worker process per service (two scorers, two trainers). Files enter as in
production: uploaded to S3, with MinIO's exact notification element pushed to the Redis list the
bridge watches.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import sqlalchemy as sa
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
BIN = Path(sys.executable).parent
WORKER_SERVICES = ("quality", "trainer", "scorer", "monitor")
# Lines worth showing when a wait times out: they usually say why.
_TROUBLE = re.compile(r"Traceback|ERROR|CRITICAL|Error:|refused|WorkerLostError")


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def compose_command(service: str) -> list[str]:
    """The `command` of a compose service, as an argv list."""
    spec = yaml.safe_load(COMPOSE.read_text())["services"][service]
    command = spec.get("command")
    if command is None:
        raise KeyError(f"compose service {service!r} has no command")
    return list(command) if isinstance(command, list) else shlex.split(command)


def expand(value: str, env: dict[str, str]) -> str:
    """Compose-style ${VAR}, ${VAR:-default} and ${VAR:?message} substitution."""

    def substitute(match: re.Match[str]) -> str:
        name, op, rest = match.group(1), match.group(2), match.group(3) or ""
        current = env.get(name, "")
        if op == ":-":
            return current or rest
        if op == ":?" and not current:
            raise KeyError(f"{name} is required: {rest}")
        return current

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}", substitute, value)


def notification_element(template: bytes, bucket: str, key: str, etag: str, size: int) -> bytes:
    """MinIO's access-format element for one created object, from the fixture's exact shape."""
    document = json.loads(template)
    record = document[0]["Event"][0]
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["object"].update({"key": quote_plus(key), "eTag": etag, "size": size})
    return json.dumps(document).encode()


def children_of(pid: int) -> list[int]:
    """Direct child processes of `pid`, from /proc (a prefork worker's pool)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields start after the last ')'.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid:
            found.append(int(entry.name))
    return sorted(found)


@dataclass
class Proc:
    name: str
    argv: list[str]
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def is_worker(self) -> bool:
        return "celery" in Path(self.argv[0]).name and "worker" in self.argv


@dataclass
class LocalStack:
    workdir: Path
    postgres_admin_url: str
    notification_template: bytes
    scorers: int = 2
    trainers: int = 2
    extra_env: dict[str, str] = field(default_factory=dict)
    # The worker services to start, and whether the bridge runs (a benchmark of one service
    # starts only that one).
    services: tuple[str, ...] = WORKER_SERVICES
    bridge: bool = True
    procs: dict[str, Proc] = field(default_factory=dict)
    # Processes a scenario stopped on purpose: a wait does not fail on them.
    expected_down: set[str] = field(default_factory=set)
    # name -> METRICS_PORT of each worker and the bridge (Prometheus scrapes these).
    metrics_ports: dict[str, int] = field(default_factory=dict)
    # Notification elements pushed for the bridge (what its counters must add up to).
    notified: int = 0

    def __post_init__(self) -> None:
        suffix = uuid.uuid4().hex[:10]
        self.db_name = f"churnops_sys_{suffix}"
        self.mlflow_db = f"churnops_sys_mlflow_{suffix}"
        self.redis_port = free_port()
        # compose's Redis demands a password (requirepass); a test-only one here.
        self.redis_password = f"system-test-{suffix}"
        self.redis_url = f"redis://default:{self.redis_password}@127.0.0.1:{self.redis_port}/0"
        self.mlflow_port = free_port()
        self.moto: Any = None
        self.databases_created = False

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> LocalStack:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
        self.moto.start()
        self.start_redis()
        self._create_databases()
        self.run_once("postgres-monitoring-init")
        self.store.ensure_buckets(self.settings.buckets)
        self._start_mlflow()
        if self.bridge:
            self.spawn("bridge", compose_command("bridge"), **self._metrics_env("bridge"))
        for service in self.services:
            for name in self.worker_names(service):
                self.spawn_worker(name)
        self.wait_for_workers()
        return self

    def spawn_worker(self, name: str) -> Proc:
        """A worker (`trainer2`...) with compose's command of its service: started, or started
        again after a scenario stopped it."""
        self.expected_down.discard(name)
        service = name.rstrip("0123456789")
        return self.spawn(name, compose_command(service), **self._metrics_env(name))

    def stop_worker(self, name: str, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop a worker on purpose (SIGTERM: a warm shutdown, its running task finished)."""
        self.expected_down.add(name)
        proc = self.procs[name]
        proc.popen.send_signal(sig)
        proc.popen.wait(600)

    def _metrics_env(self, name: str) -> dict[str, str]:
        """Each process its own /metrics port (compose gives each container the same one) and,
        for a prefork worker, its own multiprocess folder."""
        port = self.metrics_ports[name] = free_port()
        folder = self.workdir / "metrics" / name
        folder.mkdir(parents=True, exist_ok=True)
        return {
            "METRICS_PORT": str(port),
            "METRICS_BIND": "127.0.0.1",
            "PROMETHEUS_MULTIPROC_DIR": str(folder),
        }

    def worker_names(self, service: str) -> list[str]:
        count = {"scorer": self.scorers, "trainer": self.trainers}.get(service, 1)
        return [service] if count == 1 else [f"{service}{n}" for n in range(1, count + 1)]

    def start_redis(self) -> None:
        """compose.yaml's Redis command (append-only, noeviction) on a private port and folder."""
        from redis import Redis

        folder = self.workdir / "redis"
        folder.mkdir(exist_ok=True)
        private = ["--port", str(self.redis_port), "--bind", "127.0.0.1", "--dir", str(folder)]
        command = [
            expand(a, {"REDIS_PASSWORD": self.redis_password}) for a in compose_command("redis")
        ]
        argv = [*command, *private, "--save", ""]
        self.spawn("redis", argv)
        self.expected_down.discard("redis")
        client = Redis.from_url(self.redis_url, socket_connect_timeout=1)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except Exception:  # connection refused, or loading the append-only file
                return False

        self.wait_until(answers, 30, "Redis to answer")
        client.close()
        self.reset_connections()

    def stop_redis(self) -> None:
        """A clean Redis shutdown (SIGTERM): the append-only file keeps every queued message."""
        self.expected_down.add("redis")
        proc = self.procs["redis"]
        proc.popen.terminate()
        proc.popen.wait(30)

    def stop(self) -> None:
        """Workers first, Redis last (a worker shutting down still acks over it)."""
        self.expected_down.update(self.procs)
        order = sorted(self.procs.values(), key=lambda p: (p.name == "redis", p.name == "mlflow"))
        for group in (order[:-2], order[-2:]):
            for proc in group:
                if proc.popen.poll() is None:
                    proc.popen.send_signal(signal.SIGTERM)
            for proc in group:
                try:
                    proc.popen.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.popen.pid, signal.SIGKILL)
                    proc.popen.wait(10)
        if "engine" in self.__dict__:
            self.engine.dispose()
        if self.moto is not None:
            # moto keeps its buckets in this process's memory, shared by every server it runs:
            # empty them, or the next stack of the session finds this one's objects.
            host, port = self.moto.get_host_and_port()
            urllib.request.urlopen(
                urllib.request.Request(f"http://{host}:{port}/moto-api/reset", method="POST"),
                timeout=30,
            ).close()
            self.moto.stop()
        if self.databases_created:
            admin = sa.create_engine(self.postgres_admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                for name in (self.db_name, self.mlflow_db):
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

    # ---- configuration ---------------------------------------------------------------------
    @property
    def s3_endpoint(self) -> str:
        host, port = self.moto.get_host_and_port()
        return f"{host}:{port}"

    def database_url(self, name: str) -> str:
        return self.postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"

    def env(self) -> dict[str, str]:
        """What every process gets: the environment compose's x-churnops-env builds, locally."""
        values = {
            "CHURNOPS_MODE": "stack",
            "CHURNOPS_LOG_LEVEL": "INFO",
            "REDIS_URL": self.redis_url,
            "MONITORING_DB_URL": self.database_url(self.db_name),
            # Test-only credentials: Postgres trusts local connections, moto accepts any key.
            "POSTGRES_PASSWORD": "system-test-only",
            "MINIO_ROOT_USER": "system-test-user",
            "MINIO_ROOT_PASSWORD": "system-test-secret",
            "AWS_ACCESS_KEY_ID": "system-test-user",
            "AWS_SECRET_ACCESS_KEY": "system-test-secret",
            "AWS_DEFAULT_REGION": "us-east-1",
            "MINIO_ENDPOINT": self.s3_endpoint,
            "MINIO_SECURE": "false",
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{self.mlflow_port}",
            "MLFLOW_S3_ENDPOINT_URL": f"http://{self.s3_endpoint}",
            "OPTUNA_N_TRIALS": "6",
            "CHURNOPS_HOME": str(self.workdir / "home"),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("CHURNOPS_TEST")}
        return {**inherited, **values, **self.extra_env}

    @cached_property
    def settings(self) -> Any:
        from churnops_common.settings import Settings

        env = self.env()
        names = {k.lower(): k for k in env}
        fields = {
            name: env[names[name]]
            for name in Settings.model_fields
            if name in names and not name.startswith("airflow")
        }
        # Validated from these values only: neither this process's environment nor a .env file.
        return Settings.model_validate(fields).check()

    @cached_property
    def store(self) -> Any:
        from churnops_common.storage import object_store_from_settings

        return object_store_from_settings(self.settings)

    @cached_property
    def engine(self) -> sa.Engine:
        from churnops_common.db.engine import make_engine

        return make_engine(self.settings.monitoring_url())

    @cached_property
    def celery(self) -> Any:
        """A producer app configured as the Airflow DAGs' (publish by task name, control)."""
        from churnops_common.celery_app import make_celery

        return make_celery("churnops-system-test", self.settings)

    # ---- processes -------------------------------------------------------------------------
    def _create_databases(self) -> None:
        admin = sa.create_engine(self.postgres_admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in (self.db_name, self.mlflow_db):
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        self.databases_created = True

    def _start_mlflow(self) -> None:
        """compose.yaml's MLflow command, bound to a free local port instead of 0.0.0.0:5000."""
        argv = []
        for arg in compose_command("mlflow"):
            if arg.startswith("--host="):
                arg = "--host=127.0.0.1"
            elif arg.startswith("--port="):
                arg = f"--port={self.mlflow_port}"
            elif arg.startswith("--workers="):
                arg = "--workers=1"  # two cores
            elif arg.startswith("--allowed-hosts="):
                arg += f",127.0.0.1:{self.mlflow_port},localhost:{self.mlflow_port}"
            argv.append(expand(arg, self.env()))
        # compose passes the backend store in the environment (no password in `ps`); so do we.
        # MLflow's job runner (8 huey consumer processes for GenAI jobs ChurnOps never submits,
        # ~250 MB each, polling) is switched off: on two cores it competes with the workers.
        self.spawn(
            "mlflow",
            argv,
            MLFLOW_BACKEND_STORE_URI=self.database_url(self.mlflow_db),
            MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
        )
        self.wait_until(self._mlflow_ready, 240, "the MLflow server to answer /health")

    def _mlflow_ready(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.mlflow_port}/health", timeout=2
            ) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def spawn(self, name: str, argv: list[str], **env: str) -> Proc:
        argv = list(argv)
        if "worker" in argv and "-n" not in argv and "--hostname" not in argv:
            argv += ["-n", f"{name}@%h"]
        log = self.workdir / f"{name}.log"
        handle = log.open("ab")
        popen = subprocess.Popen(
            argv,
            env={**self.env(), **env},
            cwd=self.workdir,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()
        proc = Proc(name, argv, popen, log)
        self.procs[name] = proc
        return proc

    def run_once(self, service: str, timeout: float = 120) -> None:
        result = subprocess.run(
            compose_command(service),
            env=self.env(),
            cwd=self.workdir,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{service} failed: {result.stdout!r} {result.stderr!r}")

    def workers(self, service: str | None = None) -> list[Proc]:
        return [
            p
            for p in self.procs.values()
            if p.is_worker and (service is None or p.name.rstrip("0123456789") == service)
        ]

    def ping(self, timeout: float = 2.0) -> set[str]:
        """Names of the workers answering a Celery ping (the compose healthcheck's test)."""
        from redis.exceptions import ConnectionError as RedisConnectionError

        try:
            replies = self.celery.control.ping(timeout=timeout) or []
        except (OSError, RedisConnectionError):
            self.reset_connections()
            return set()
        return {next(iter(r)).split("@")[0] for r in replies}

    def wait_for_workers(self, timeout: float = 180) -> None:
        expected = {p.name for p in self.workers()}
        self.wait_until(
            lambda: expected <= self.ping(1.0),
            timeout,
            f"workers {sorted(expected)} to answer ping",
        )

    def reset_connections(self) -> None:
        """Redis was restarted under our pooled connections: drop them; the next call redials."""
        from kombu import pools

        pools.reset()  # type: ignore[no-untyped-call]
        self.__dict__.pop("celery", None)

    def active_tasks(self, service: str) -> list[dict[str, Any]]:
        """Tasks a service's workers run now, each with its `hostname` and pool `worker_pid`.

        Asked of those workers only, returning as soon as each has answered (not after the
        timeout): a scenario that must act while a task runs cannot wait seconds for replies.
        """
        nodes = [f"{p.name}@{socket.gethostname()}" for p in self.workers(service)]
        inspect = self.celery.control.inspect(destination=nodes, limit=len(nodes), timeout=2.0)
        replies = inspect.active() or {}
        return [{**task, "hostname": host} for host, tasks in replies.items() for task in tasks]

    def alive(self) -> dict[str, bool]:
        return {name: proc.popen.poll() is None for name, proc in self.procs.items()}

    def unexpectedly_down(self) -> list[str]:
        return [n for n, ok in self.alive().items() if not ok and n not in self.expected_down]

    def trouble(self, lines: int = 25) -> str:
        """The last error-looking lines of every log: what a failed wait prints."""
        found = []
        for name, proc in self.procs.items():
            text = proc.log.read_text(errors="replace").splitlines()
            hits = [f"[{name}] {line}" for line in text if _TROUBLE.search(line)]
            found.extend(hits[-5:])
        return "\n".join(found[-lines:])

    def logs(self, name: str, tail: int = 60) -> str:
        lines = self.procs[name].log.read_text(errors="replace").splitlines()
        return "\n".join(lines[-tail:])

    # ---- input and observation -------------------------------------------------------------
    def upload(self, path: Path, key: str, *, notify: bool = True) -> Any:
        """Put a file into the landing bucket and push MinIO's notification element."""
        info = self.store.put_file(self.settings.minio_landing_bucket, key, path)
        if notify:
            self.notify(key, info.etag, info.size)
        return info

    def notify(self, key: str, etag: str, size: int) -> None:
        from redis import Redis

        element = notification_element(
            self.notification_template, self.settings.minio_landing_bucket, key, etag, size
        )
        with Redis.from_url(self.redis_url) as client:
            client.rpush(self.settings.minio_notify_redis_key, element)
        self.notified += 1

    def publish(self, event: Any) -> None:
        """Publish an event as the Airflow DAGs do: CeleryBus over the producer app."""
        from churnops_common.bus.celery_bus import CeleryBus

        CeleryBus(self.celery).publish(event)

    def send_raw(self, task_name: str, payload: Any) -> None:
        """A message straight onto a task's queue, bypassing the event contracts."""
        from churnops_common.routing import subscription_by_task

        queue = subscription_by_task(task_name).queue
        self.celery.send_task(task_name, args=[payload], queue=queue)

    def count(self, query: str, **params: Any) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text(query), params).scalar_one())

    def rows(self, query: str, **params: Any) -> list[sa.Row[Any]]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(query), params))

    def objects(self, bucket: str, prefix: str = "") -> list[str]:
        return [o.key for o in self.store.list_objects(bucket, prefix)]

    def queue_lengths(self) -> dict[str, int]:
        """Messages waiting per queue, in every priority list of it (reports wait in the last)."""
        from redis import Redis

        from churnops_common.celery_app import queue_lists

        with Redis.from_url(self.redis_url) as client:
            return {
                q: sum(int(client.llen(key)) for key in queue_lists(q)) for q in WORKER_SERVICES
            }

    def idle(self) -> bool:
        """No message waiting or unacked and no handler running: the platform has settled."""
        from redis import Redis

        if any(self.queue_lengths().values()):
            return False
        notify = self.settings.minio_notify_redis_key
        with Redis.from_url(self.redis_url) as client:
            # Celery's Redis transport keeps delivered, unacked messages in the `unacked` hash.
            waiting = client.hlen("unacked") + client.llen(notify)
            if waiting + client.llen(f"{notify}:processing"):
                return False
        return (
            self.count("SELECT count(*) FROM monitoring.processed_events WHERE status = 'running'")
            == 0
        )

    def wait_idle(self, timeout: float = 120, settle: float = 2.0) -> None:
        """Idle twice, `settle` seconds apart (a follow-up may be on its way)."""

        def settled() -> bool:
            if not self.idle():
                return False
            time.sleep(settle)
            return self.idle()

        self.wait_until(settled, timeout, "the platform to settle")

    def wait_until(
        self, predicate: Callable[[], bool], timeout: float, what: str, poll: float = 0.25
    ) -> float:
        """Poll until true; returns the seconds waited. Fails at once if a process died."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if predicate():
                return time.monotonic() - started
            down = self.unexpectedly_down()
            if down:
                raise AssertionError(f"{down} exited while waiting for {what}:\n{self.trouble()}")
            time.sleep(poll)
        raise AssertionError(
            f"timed out after {timeout:.0f}s waiting for {what}; recent errors:\n{self.trouble()}"
        )
