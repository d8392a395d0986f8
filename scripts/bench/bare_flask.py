"""The baseline for scripts/bench/data_api.py: a bare Flask app with one small JSON endpoint.

    gunicorn -w 4 -b 127.0.0.1:8001 --pythonpath scripts/bench 'bare_flask:create_app()'

It answers ``GET /api/v1/data`` (the same path as the real API, so wrk's requests are alike)
with a small fixed JSON object: what Flask and gunicorn cost before any of our work.
"""

from __future__ import annotations

from flask import Flask


def create_app() -> Flask:
    """A Flask app with one route returning a small JSON object."""
    app = Flask(__name__)

    @app.get("/api/v1/data")
    def data() -> dict[str, object]:
        return {"status": "ok", "items": [1, 2, 3]}

    return app
