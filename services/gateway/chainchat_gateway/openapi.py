"""The OpenAPI document states every error an operation can answer with, as the SPEC error body.

FastAPI documents only the success status and its own 422 shape (``{"detail": [...]}``), which
is not what the gateway sends. Here each ``/api/v1`` operation gets the statuses that follow from
how it is built — 401 when it needs a token, 403 when it needs an admin, 404 when its path names
a resource, 413 and 422 when it takes a body (``bodies.py`` caps its size and nesting), 422 when it
takes input, 503 as every route depends on a service behind NATS — plus
those its decorator lists with ``errors(...)`` (domain outcomes such as 409 or 429), each with the
``ErrorBody`` schema. Clients, and the fuzz suite, can then hold the gateway to its document.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant

from chainchat_gateway.security import admin_user, current_user, optional_user, reauthenticated, recent_user
from chainchat_protocol.errors import ErrorBody

ERROR_SCHEMA = "ErrorBody"
DESCRIPTIONS = {
    400: "Bad request",
    401: "No, bad, expired or revoked access token (or credentials)",
    403: "Not allowed (reauth_required: send X-Reauth-Token from POST /auth/reauth)",
    404: "Not found, or not visible to the caller",
    409: "Conflict with the current state",
    413: "Too large",
    415: "Unsupported media type",
    416: "Range not satisfiable",
    422: "Invalid input",
    429: "Rate limited (see Retry-After)",
    503: "A service behind the gateway is unavailable",
}
_FASTAPI_422_SCHEMAS = ("HTTPValidationError", "ValidationError")


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route decorator: domain errors this operation can answer with."""
    return {status: {"description": DESCRIPTIONS[status]} for status in statuses}


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for dep in dependant.dependencies:
        yield dep
        yield from _dependencies(dep)


def _implied_statuses(route: Any) -> set[int]:
    calls: set[Callable[..., Any] | None] = {dep.call for dep in _dependencies(route.dependant)}
    statuses = {503}
    if calls & {current_user, optional_user, admin_user}:
        statuses.add(401)
    if calls & {admin_user, recent_user, reauthenticated}:
        statuses.add(403)  # admin_required / reauth_required
    if route.dependant.path_params:
        statuses.add(404)
    has_body = route.body_field is not None or "requestBody" in (route.openapi_extra or {})
    if has_body:
        statuses |= {400, 413}  # a body that cannot be parsed at all; one over the cap
    if has_body or route.dependant.path_params or route.dependant.query_params:
        statuses.add(422)
    return statuses


def _api_routes(routes: list[Any]) -> Iterator[Any]:
    """Every API route as mounted (included routers resolved, their prefix in ``path_format``)."""
    for context in routing.iter_route_contexts(routes):
        if isinstance(context.original_route, routing.APIRoute) and context.include_in_schema:
            yield context


def document_errors(schema: dict[str, Any], routes: list[Any], prefix: str) -> None:
    """Add the SPEC error body for each error status of each ``prefix`` operation, in place."""
    ref = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}
    for route in _api_routes(routes):
        if not route.path_format.startswith(prefix):
            continue
        for method in route.methods:
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            declared = {int(code) for code in responses if code.isdigit() and int(code) >= 400}
            for status in sorted(declared | _implied_statuses(route)):
                response = responses.setdefault(str(status), {})
                response.setdefault("description", DESCRIPTIONS.get(status, "Error"))
                content = response.get("content", {}).get("application/json", {})
                if not content.get("schema") or content["schema"].get("$ref", "").endswith(
                    "/HTTPValidationError"
                ):
                    response["content"] = {"application/json": {"schema": ref}}
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components[ERROR_SCHEMA] = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(components[ERROR_SCHEMA].pop("$defs", {}))
    text = repr(schema["paths"])
    for name in _FASTAPI_422_SCHEMAS:
        if f"/{name}'" not in text:
            components.pop(name, None)


def install(app: FastAPI, prefix: str) -> None:
    """Make ``app.openapi()`` return the document with its errors stated."""
    generate = app.openapi
    done: list[int] = []  # FastAPI makes a new document when routes change: state errors in each

    def openapi() -> dict[str, Any]:
        schema = generate()
        if id(schema) not in done:
            document_errors(schema, app.routes, prefix)
            done[:] = [id(schema)]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
