"""`Location` on a 201: the path of the created object's own GET."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response


def set_location(request: Request, response: Response, route_name: str, **params: Any) -> None:
    """Point `Location` at the route named `route_name` (an endpoint function's name,
    which is also its operationId) with these path parameters: a path below the
    service's root, e.g. `/api/v1/agreements/12`."""
    path = request.app.url_path_for(route_name, **{k: str(v) for k, v in params.items()})
    response.headers["Location"] = str(path)
