"""The service over HTTP (httpx): ``/health`` and ``/health/deps`` as BSNexus reports them, and request
latency of any path. A service that does not answer is a row with an ``error``, not a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import TYPE_CHECKING, Any

import httpx
import pandas as pd

from bsnexus_lab.areas.profile import main_pid
from bsnexus_lab.config import redact_url
from bsnexus_lab.errors import ConfigError, LabError

if TYPE_CHECKING:
    from bsnexus_lab.context import Context

HEALTH_COLUMNS = ["endpoint", "component", "status", "version", "http_status", "latency_ms", "error"]
REQUEST_COLUMNS = ["request", "path", "status", "latency_ms", "error"]
TIMEOUT_S = 10.0
MAX_REQUESTS = 10_000
BODY_CHARS = 500


def service_url(ctx: Context) -> str:
    url = ctx.target.service_url
    if not url:
        raise ConfigError(
            "the target has no service_url",
            target=ctx.target.name,
            hint='set service_url = "http://host:8000" in its profile (or BSNEXUS_LAB_SERVICE_URL)',
        )
    if not url.startswith(("http://", "https://")):
        raise ConfigError("the service_url must start with http:// or https://", target=redact_url(url))
    return url.rstrip("/")


def _client(ctx: Context) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=service_url(ctx), timeout=TIMEOUT_S, follow_redirects=False)


def _error(ctx: Context, exc: Exception) -> str:
    return ctx.target.scrub(redact_url(f"{type(exc).__name__}: {exc}"))[:BODY_CHARS]


async def _get(ctx: Context, client: httpx.AsyncClient, path: str) -> tuple[httpx.Response | None, float, str | None]:
    started = time.perf_counter()
    try:
        response = await client.get(path)
    except httpx.HTTPError as exc:
        return None, (time.perf_counter() - started) * 1000, _error(ctx, exc)
    return response, (time.perf_counter() - started) * 1000, None


async def health(ctx: Context) -> pd.DataFrame:
    """``/health`` (the service) and ``/health/deps`` (its Redis and PostgreSQL, as it sees them)."""
    rows: list[dict[str, Any]] = []
    async with _client(ctx) as client:
        for endpoint, default in (("/health", "service"), ("/health/deps", None)):
            response, latency, error = await _get(ctx, client, endpoint)
            base = {"endpoint": endpoint, "latency_ms": round(latency, 1), "error": error}
            body: Any = None
            if response is not None:
                base["http_status"] = response.status_code
                with contextlib.suppress(ValueError):
                    body = response.json()
                if response.status_code >= 400 or not isinstance(body, dict):
                    base["error"] = ctx.target.scrub(response.text[:BODY_CHARS]) or f"HTTP {response.status_code}"
            if default == "service":
                status = body.get("status") if isinstance(body, dict) else None
                version = body.get("version") if isinstance(body, dict) else None
                rows.append(base | {"component": "service", "status": status or "unreachable", "version": version})
            elif isinstance(body, dict) and not base["error"]:
                rows += [base | {"component": name, "status": str(value)} for name, value in body.items()]
            else:
                rows.append(base | {"component": "dependencies", "status": "unknown"})
    return pd.DataFrame(rows, columns=HEALTH_COLUMNS)


async def latency(ctx: Context, path: str = "/health", n: int = 50, concurrency: int = 5) -> pd.DataFrame:
    """``n`` GETs of ``path``, ``concurrency`` at a time: one row per request (status, latency, error body)."""
    if not 1 <= n <= MAX_REQUESTS or not 1 <= concurrency <= 100:
        raise LabError(f"n must be 1..{MAX_REQUESTS} and concurrency 1..100")
    if not path.startswith("/"):
        raise LabError(f"the path must start with / (got {path!r})")
    gate = asyncio.Semaphore(concurrency)
    async with _client(ctx) as client:

        async def one(request: int) -> dict[str, Any]:
            async with gate:
                response, took, error = await _get(ctx, client, path)
            status = response.status_code if response is not None else None
            if response is not None and status is not None and status >= 400:
                error = ctx.target.scrub(response.text[:BODY_CHARS])
            return {"request": request, "path": path, "status": status, "latency_ms": took, "error": error}

        rows = await asyncio.gather(*(one(i) for i in range(n)))
    frame = pd.DataFrame(rows, columns=REQUEST_COLUMNS)
    frame["status"] = frame["status"].astype("Int64")
    frame.attrs.update(path=path, concurrency=concurrency, pid=_pid(ctx))
    return frame


def _pid(ctx: Context) -> int | None:
    """The service's pid when the target names one, so latency findings meet the profile's causes."""
    if ctx.target.process is None:
        return None
    with contextlib.suppress(LabError):
        return main_pid(ctx.target.process)
    return None


def validation_errors(requests: pd.DataFrame) -> pd.DataFrame:
    """FastAPI's 422 bodies as a table: where (loc), what (msg, type) and the input refused."""
    rows = []
    for request, body in zip(requests["request"], requests["error"].where(requests["status"] == 422), strict=True):
        with contextlib.suppress(TypeError, ValueError):
            for item in json.loads(body).get("detail", []):
                loc = ".".join(str(p) for p in item.get("loc", []))
                rows.append(
                    {
                        "request": request,
                        "loc": loc,
                        "msg": item.get("msg"),
                        "type": item.get("type"),
                        "input": item.get("input"),
                    }
                )
    return pd.DataFrame(rows, columns=["request", "loc", "msg", "type", "input"])
