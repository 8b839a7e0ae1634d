"""The Celery app of dreamnodes: `celery -A dreamnodes.engine.celery_app worker` runs our tasks.

Configured from the environment, so the plain `celery` command and `dreamnodes worker` (a thin
wrapper that sets the same variables from its flags) start the same worker:

- ``DREAMNODES_BROKER``: the broker, Redis (default ``redis://127.0.0.1:6379/0``);
- ``DREAMNODES_STORE``: the run log every worker shares (a SQLite file on one machine, or
  ``postgresql://...`` across machines);
- ``DREAMNODES_LIMITS_URL``: the Redis that keeps the account's limits (default: the broker);
- ``DREAMNODES_BASE_URLS``: base URLs besides the providers' own that a worker may send keys
  to (comma-separated; a sandbox's runs use its throwaway key and are always allowed);
- ``DREAMNODES_VISIBILITY_TIMEOUT``: seconds before Redis hands a dead worker's unacknowledged
  tasks to another worker (default 60; every task is far shorter, polls wait at most 20 s).

Tasks are acknowledged late and rejected when their worker is lost, one prefetched at a time,
so a worker killed mid-task loses nothing: the task goes to another worker (and `serve`'s
watchdog sends a late step again within seconds, see `steps`).
"""

from __future__ import annotations

import os

from celery import Celery

__all__ = ["BROKER_ENV", "TASKS", "app", "make_app", "send_step"]

BROKER_ENV = "DREAMNODES_BROKER"
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
QUEUE = "dreamnodes"
TASKS = {"create": "dreamnodes.create", "poll": "dreamnodes.poll"}  # a run's steps' tasks


def make_app(broker: str | None = None) -> Celery:
    """The Celery app on `broker` (default: $DREAMNODES_BROKER)."""
    url = broker or os.environ.get(BROKER_ENV) or DEFAULT_BROKER
    visibility = float(os.environ.get("DREAMNODES_VISIBILITY_TIMEOUT", "60"))
    celery = Celery("dreamnodes", broker=url, include=["dreamnodes.engine.tasks"])
    celery.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        broker_transport_options={
            "visibility_timeout": visibility,
            # Look for a dead worker's tasks every second, not every 100 s.
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
        },
    )
    return celery


app = make_app()


def send_step(celery: Celery, kind: str, run_id: str, token: str, countdown: float) -> None:
    """Queue a run's step (`create` or `poll`) with its token, after `countdown` seconds."""
    celery.send_task(TASKS[kind], args=[run_id, token], countdown=countdown or None)
