"""``/console``: the operator console's static files, served by switchboard itself.

The files hold no secret and no data, so they are public like ``/healthz``; everything the
console shows comes from ``/v1`` with the API token, so it can do nothing the API does not
allow. No CDN: every asset is in ``switchboard/console/static`` (works offline).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from starlette.staticfiles import StaticFiles

from switchboard.console import STATIC_DIR

__all__ = ["install_console"]

console_router = APIRouter(include_in_schema=False)

#: Strict enough that an injected script could not run or send data elsewhere.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; media-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'"
)


@console_router.get("/console")
async def console_redirect() -> RedirectResponse:
    """``/console`` → ``/console/`` (the modules' relative URLs resolve under it)."""
    return RedirectResponse("/console/", status_code=308)


@console_router.get("/console/")
async def console_index() -> FileResponse:
    """The console's single page."""
    return FileResponse(
        STATIC_DIR / "index.html",
        media_type="text/html",
        headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache"},
    )


def install_console(app: FastAPI) -> None:
    """Serve the console at ``/console/`` and its assets under ``/console/static/``."""
    app.include_router(console_router)
    app.mount("/console/static", StaticFiles(directory=STATIC_DIR), name="console-static")
