"""Serve GOV.UK Frontend's assets from the npm package the set-up scripts install.

The compiled CSS names the GDS Transport font, which only gov.uk services may use, so we
serve it with a system font stack instead.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from flask import Blueprint, Response, abort, send_from_directory

from web.config import PROJECT_ROOT

GOVUK = PROJECT_ROOT / "node_modules" / "govuk-frontend" / "dist" / "govuk"
SYSTEM_FONTS = (
    'system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans",sans-serif'
)

bp = Blueprint("assets", __name__)


@cache
def _stylesheet(path: Path) -> str:
    css = path.read_text(encoding="utf-8")
    return css.replace("GDS Transport,arial,sans-serif", SYSTEM_FONTS).replace(
        "font-family:GDS Transport", f"font-family:{SYSTEM_FONTS}"
    )


def _cached(response: Response) -> Response:
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@bp.get("/assets/<path:filename>")
def govuk_asset(filename: str) -> Response:
    """Images, icons and the manifest from GOV.UK Frontend."""
    folder = GOVUK / "assets"
    if not folder.is_dir():
        abort(404)
    return _cached(send_from_directory(folder, filename))


@bp.get("/govuk/govuk-frontend.css")
def govuk_css() -> Response:
    """GOV.UK Frontend's stylesheet, with a system font."""
    path = GOVUK / "govuk-frontend.min.css"
    if not path.is_file():
        abort(404)
    return _cached(Response(_stylesheet(path), mimetype="text/css"))


@bp.get("/govuk/govuk-frontend.min.js")
def govuk_js() -> Response:
    """GOV.UK Frontend's JavaScript (an ES module)."""
    if not (GOVUK / "govuk-frontend.min.js").is_file():
        abort(404)
    return _cached(send_from_directory(GOVUK, "govuk-frontend.min.js", mimetype="text/javascript"))
