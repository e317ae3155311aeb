"""Operations endpoints: GET /healthz (liveness), GET /readyz (readiness), GET /metrics.

/healthz answers from memory, so a process that answers is alive whatever its database
does: point restarts (supervisor, systemd, a liveness probe) at it. Its `data` says
"degraded" with the outages this process has seen and not yet seen end (outages.py).
/readyz writes, as work does (readiness.py): point load balancers and monitoring at it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import Field

from ansible_proxy.protocol import OMITTED_WHEN_EMPTY, Answer, Envelope, ok
from ansible_proxy.server.deps import error_answer, require_metrics
from ansible_proxy.server.outages import UNAVAILABLE, Fault, Outages
from ansible_proxy.server.readiness import Readiness

router = APIRouter(tags=["operations"])


class Outage(Answer):
    resource: str = Field(description="database or data directory")
    status: int = Field(description="what requests it fails are answered: 503 or 507")
    message: str


class Health(Answer):
    status: Literal["ok", "degraded"]
    outages: list[Outage] = Field(
        default_factory=list, description="only when degraded", **OMITTED_WHEN_EMPTY
    )


class Ready(Answer):
    status: Literal["ready"]


async def _outages(request: Request) -> Outages:
    outages: Outages = request.app.state.outages
    return outages


async def _readiness(request: Request) -> Readiness:
    readiness: Readiness = request.app.state.readiness
    return readiness


def _described(faults: list[Fault]) -> list[dict[str, Any]]:
    return [{"resource": f.resource, "status": f.status, "message": f.message} for f in faults]


@router.get(
    "/healthz",
    response_model=Envelope[Health],
    summary="Liveness: this process answers (no I/O); outages it has seen",
)
async def healthz(outages: Annotated[Outages, Depends(_outages)]) -> dict[str, Any]:
    faults = outages.current()
    data = {"status": "degraded", "outages": _described(faults)} if faults else {"status": "ok"}
    return ok(data)


@router.get(
    "/readyz",
    response_model=Envelope[Ready],
    summary="Readiness: the database takes a write and the data directory a file",
    responses={UNAVAILABLE: error_answer("Not ready: what failed")},
)
async def readyz(
    readiness: Annotated[Readiness, Depends(_readiness)],
    outages: Annotated[Outages, Depends(_outages)],
) -> Response | dict[str, Any]:
    faults = await readiness.check()
    failed = {fault.resource for fault in faults}
    for fault in faults:
        outages.noticed(fault, request=False)
    for outage in outages.current():
        if outage.resource not in failed:
            outages.recovered(outage.resource)
    if faults:
        message = "not ready: " + "; ".join(fault.message for fault in faults)
        return JSONResponse({"code": UNAVAILABLE, "message": message}, status_code=UNAVAILABLE)
    return ok({"status": "ready"})


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="Prometheus metrics (metrics or admin token)",
    dependencies=[Depends(require_metrics)],
)
def metrics(request: Request) -> Response:
    body = request.app.state.metrics.render()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
