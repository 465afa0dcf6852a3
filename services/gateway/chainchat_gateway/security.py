"""Who is calling: the gateway verifies access tokens locally (JWKS from auth, cached).

Routes depend on ``CurrentUser`` (any logged-in user) or ``AdminUser``. The auth issue fills in
the verification; the interface here is what every route module uses.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Request
from pydantic import BaseModel

from chainchat_protocol.errors import Forbidden, Unauthorized


class Principal(BaseModel):
    """The verified claims of an access token."""

    user_id: str
    role: Literal["admin", "member"]
    session_id: str
    token_id: str


async def current_user(request: Request) -> Principal:
    verifier = getattr(request.app.state, "token_verifier", None)
    if verifier is None:
        raise Unauthorized("authentication is not available yet", code="unauthorized")
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing bearer token", code="missing_token")
    principal: Principal = await verifier.verify(token)
    return principal


async def admin_user(user: Annotated[Principal, Depends(current_user)]) -> Principal:
    if user.role != "admin":
        raise Forbidden("admin role required", code="admin_required")
    return user


CurrentUser = Annotated[Principal, Depends(current_user)]
AdminUser = Annotated[Principal, Depends(admin_user)]
