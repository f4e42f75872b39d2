"""The committed contract snapshot `openapi/openapi.json`, generated from the app."""

from __future__ import annotations

import json

from app.config import Settings


def export_openapi() -> str:
    from app.main import create_app

    app = create_app(Settings(database_url="sqlite://", app_env="demo"), demo_docs=False)
    return json.dumps(app.openapi(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"
