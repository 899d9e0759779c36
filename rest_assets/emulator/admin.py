"""The ``/_admin/*`` HTTP endpoints (same features as the Python API)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .messages import Request, Response, error, json_response

if TYPE_CHECKING:
    from .emulator import Emulator


def _body(request: Request) -> dict[str, Any]:
    data = request.json()
    if not isinstance(data, dict):
        raise ValueError("JSON body must be an object")
    return data


def handle_admin(emu: Emulator, request: Request) -> Response:
    """Answer an admin request; bad input gives 400, unknown paths 404."""
    parts = [p for p in request.path.split("/") if p][1:]
    try:
        return _dispatch(emu, request.method, parts, request)
    except (ValueError, TypeError, KeyError) as exc:
        return error(400, "bad_request", message=str(exc))


def _dispatch(emu: Emulator, method: str, parts: list[str], request: Request) -> Response:
    if parts == ["requests"] and method == "GET":
        return json_response(200, emu.requests())
    if parts == ["requests"] and method == "DELETE":
        return json_response(200, {"cleared": emu.log.clear()})
    if parts == ["faults"] and method == "GET":
        return json_response(200, emu.faults.rules())
    if parts == ["faults"] and method == "POST":
        return json_response(201, emu.add_fault(**_body(request)))
    if parts == ["faults"] and method == "DELETE":
        emu.clear_faults()
        return json_response(200, {"cleared": True})
    if parts == ["churn"] and method == "POST":
        return json_response(201, emu.set_churn(**_body(request)))
    if parts == ["churn"] and method == "GET":
        return json_response(200, emu.churn.describe() if emu.churn else None)
    if parts == ["advance"] and method == "POST":
        return json_response(200, emu.advance(**_body(request)))
    if parts == ["config"] and method == "POST":
        return json_response(200, emu.configure(**_body(request)))
    if parts == ["config"] and method == "GET":
        return json_response(200, emu.config.runtime())
    if len(parts) == 3 and parts[0] == "truth" and method == "GET":
        try:
            return json_response(200, emu.truth(parts[1], parts[2]))
        except KeyError:
            return error(404, "not_found", message="unknown source or resource")
    return error(404, "not_found", message="unknown admin endpoint")
