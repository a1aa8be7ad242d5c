"""The crucible BigQuery emulator with BigQuery's asynchronous jobs.

crucible (0.1.0a2, pinned in requirements.txt) runs a query job inside the
jobs.insert request and answers DONE. BigQuery answers jobs.insert at once with
the job PENDING or RUNNING, runs it, and lets getQueryResults wait up to
`timeoutMs` for it. This launcher serves the same emulator with three of its
handlers changed to match that:

- jobs.insert registers the job (a known id still gets crucible's 409
  `duplicate`), answers with the job RUNNING, and runs it in the background,
  at most `--job-concurrency` at a time (others wait in a queue, as BATCH
  jobs do);
- getQueryResults honours `timeoutMs` (default 10 s, as BigQuery's);
- jobs.cancel stops a job that has not started yet: it ends DONE with
  errorResult reason `stopped`, as BigQuery reports a cancelled job. A job
  already executing in DuckDB runs to its end (BigQuery's cancel is also
  best effort).

It also counts the API calls that name each job (jobs.insert, jobs.get,
getQueryResults, jobs.cancel), so a benchmark reads on the wire how many
BigQuery calls a build cost: `GET /_async/calls/{project}` answers
`{jobId: {method: count}}`.

For the tests of the "still running" paths, jobs of one project can be held
queued on cue (fault injection, scoped to a project so parallel tests do not
see it): `POST /_async/hold/{project}` and `POST /_async/release/{project}`.

Everything else, including execution, is crucible's own code. Used on its own
port by the benchmarks and the tests of the "still running" paths; the main
stack keeps plain crucible.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import time
from typing import Any

import uvicorn
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crucible.engine import Engine
from crucible.engine.errors import CrucibleError, ErrorKind
from crucible.server.app import create_app
from crucible.server.bigquery import app as bq_app
from crucible.server.bigquery.errors import http_error
from crucible.server.bigquery.jobs import Job, new_job_id, now_ms

BigQueryServer = bq_app.BigQueryServer
_original_get = BigQueryServer.jobs_get
_original_results = BigQueryServer.get_query_results
_original_cancel = BigQueryServer.jobs_cancel

# BigQuery's default getQueryResults wait (REST reference, jobs.getQueryResults).
DEFAULT_TIMEOUT_MS = 10_000
POLL_SECONDS = 0.02


class Background:
    """Jobs waiting for, or holding, an execution slot."""

    def __init__(self, concurrency: int) -> None:
        self.slots = asyncio.Semaphore(concurrency)
        self.queued: dict[tuple[str, str], asyncio.Task[None]] = {}
        self.started: set[tuple[str, str]] = set()
        self.held: dict[str, asyncio.Event] = {}

    def released(self, project: str) -> asyncio.Event:
        event = self.held.get(project)
        if event is None:
            event = self.held[project] = asyncio.Event()
            event.set()
        return event


SERVER: list[Any] = []


async def hold(request: Request) -> Response:
    _background(SERVER[0]).released(request.path_params["project"]).clear()
    return JSONResponse({"held": request.path_params["project"]})


async def release(request: Request) -> Response:
    _background(SERVER[0]).released(request.path_params["project"]).set()
    return JSONResponse({"released": request.path_params["project"]})


def _background(server: Any) -> Background:
    return server._async_background  # type: ignore[no-any-return]


CALLS: dict[str, dict[str, dict[str, int]]] = {}


def _count(project: str, job_id: str, method: str) -> None:
    per_job = CALLS.setdefault(project, {}).setdefault(job_id, {})
    per_job[method] = per_job.get(method, 0) + 1


async def calls(request: Request) -> Response:
    return JSONResponse(CALLS.get(request.path_params["project"], {}))


async def jobs_get(self: Any, request: Request) -> Response:
    _count(request.path_params["project"], request.path_params["job"], "jobs.get")
    return await _original_get(self, request)


async def jobs_insert(self: Any, request: Request) -> Response:
    project = request.path_params["project"]
    body: dict[str, Any] = await request.json()
    reference = bq_app.obj(body.get("jobReference"))
    if reference.get("jobId"):
        _count(project, str(reference["jobId"]), "jobs.insert")
    configuration: dict[str, Any] = dict(bq_app.obj(body.get("configuration")))
    try:
        kinds = [k for k in ("query", "load", "copy", "extract") if k in configuration]
        if kinds != ["query"]:
            raise bq_app.CrucibleUnsupportedError(
                f"jobs.insert of a {kinds[0] if kinds else 'empty'} job (only query jobs)"
            )
        if configuration.get("dryRun"):
            raise bq_app.CrucibleUnsupportedError("dry-run jobs")
        job = Job(
            project=project,
            job_id=reference.get("jobId") or new_job_id(),
            location=reference.get("location") or bq_app.DEFAULT_LOCATION,
            job_type="QUERY",
            configuration=configuration,
        )
        self.store.add(job)
    except CrucibleError as exc:
        return http_error(exc)
    bg = _background(self)
    key = (job.project, job.job_id)

    async def run() -> None:
        await bg.released(job.project).wait()
        async with bg.slots:
            bg.started.add(key)
            try:
                await run_in_threadpool(self.runner.run_query, job)
            finally:
                bg.queued.pop(key, None)
                bg.started.discard(key)

    bg.queued[key] = asyncio.create_task(run())
    return JSONResponse(self.job_resource(job, self._base(request)))


async def get_query_results(self: Any, request: Request) -> Response:
    raw = request.query_params.get("timeoutMs")
    timeout_ms = DEFAULT_TIMEOUT_MS if raw is None else max(0, int(raw))
    deadline = time.monotonic() + timeout_ms / 1000
    project, job_id = request.path_params["project"], request.path_params["job"]
    _count(project, job_id, "getQueryResults")
    while time.monotonic() < deadline:
        try:
            if self.store.get(project, job_id).done:
                break
        except CrucibleError:
            break  # crucible's own handler answers the 404
        await asyncio.sleep(POLL_SECONDS)
    return await _original_results(self, request)


async def jobs_cancel(self: Any, request: Request) -> Response:
    project, job_id = request.path_params["project"], request.path_params["job"]
    _count(project, job_id, "jobs.cancel")
    bg = _background(self)
    key = (project, job_id)
    task = bg.queued.get(key)
    if task is not None and key not in bg.started:
        task.cancel()
        bg.queued.pop(key, None)
        try:
            pending = self.store.get(project, job_id)
        except CrucibleError as exc:
            return http_error(exc)
        stopped = dataclasses.replace(pending)
        stopped.error = {
            "reason": "stopped",
            "message": "Job execution was cancelled: User requested cancellation",
        }
        stopped.errors = [stopped.error]
        stopped.error_kind = ErrorKind.RUNTIME
        stopped.ended_ms = now_ms()
        self.store.finished(pending, stopped)
    return await _original_cancel(self, request)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9051)
    parser.add_argument("--job-concurrency", type=int, default=2)
    args = parser.parse_args()

    original_init = BigQueryServer.__init__

    def init(self: Any, engine: Engine) -> None:
        original_init(self, engine)
        self._async_background = Background(args.job_concurrency)
        SERVER.append(self)

    BigQueryServer.__init__ = init  # type: ignore[method-assign]
    BigQueryServer.jobs_insert = jobs_insert  # type: ignore[method-assign]
    BigQueryServer.jobs_get = jobs_get  # type: ignore[method-assign]
    BigQueryServer.get_query_results = get_query_results  # type: ignore[method-assign]
    BigQueryServer.jobs_cancel = jobs_cancel  # type: ignore[method-assign]
    app = create_app("bigquery", Engine(None))
    app.router.routes[0:0] = [
        Route("/_async/calls/{project}", calls, methods=["GET"]),
        Route("/_async/hold/{project}", hold, methods=["POST"]),
        Route("/_async/release/{project}", release, methods=["POST"]),
    ]
    uvicorn.run(app, host=args.host, port=args.port, access_log=False)


if __name__ == "__main__":
    main()
