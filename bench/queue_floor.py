"""The queue's own hop, for `make bench ARGS=jobstart`: a task that does nothing but what every
job's end must do, wake its waiter (studio.waiting.notify_done). The bench's worker imports it
(`--include bench.queue_floor`) and takes it from the jobs' own queue, so publishing it and
blocking on its done-notice times the publish, the prefork worker's pickup, the notice and the
wake, with no database, engine or storage in between."""

from __future__ import annotations

from celery import shared_task

from studio import waiting


@shared_task(name="bench.queue_floor.wake", ignore_result=True)
def wake(job_id: str) -> None:
    waiting.notify_done(job_id)
