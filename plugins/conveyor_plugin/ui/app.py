"""`conveyor_app`: GET / (the page) and GET /api/overview (its data, JSON), both authenticated."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
from airflow.api_fastapi.core_api.security import requires_access_view
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse

URL_PREFIX = "/conveyor"
CACHE_SECONDS = 10.0
PAGE = Path(__file__).with_name("page.html")

conveyor_app = FastAPI(
    title="Conveyor",
    description="Pipeline state: stream lag, freshness, quarantine, table health.",
    dependencies=[Depends(requires_access_view(AccessView.PLUGINS))],
)
_cache: dict[str, tuple[float, dict[str, Any]]] = {}


def _overview() -> dict[str, Any]:
    from conveyor import connections
    from conveyor.catalog import resolve_catalog
    from conveyor.overview import pipeline_overview
    from conveyor.provider.hooks.connections import pipeline_settings

    settings = pipeline_settings(
        kafka_conn_id=connections.KAFKA_ADMIN, lake_conn_id=connections.LAKE
    )
    return pipeline_overview(settings, resolve_catalog(settings))


@conveyor_app.get("/", response_class=HTMLResponse)
async def page() -> HTMLResponse:
    """The page; it draws itself from `api/overview`."""
    return HTMLResponse(PAGE.read_text())


@conveyor_app.get("/api/overview")
async def overview() -> dict[str, Any]:
    """Streams, tables, the 24-hour series and the DAG ids (see `conveyor.overview`)."""
    from conveyor.errors import ConveyorError

    cached = _cache.get("overview")
    if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    try:
        data = await asyncio.to_thread(_overview)
    except ConveyorError as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc
    _cache["overview"] = (time.monotonic(), data)
    return data
