"""Public API routes for the chat domain (SPEC §7); they forward to the chat service over NATS.

The gateway validates bodies with the shared protocol models (so the chat service and the
gateway reject the same input) and adds the verified caller. A send body is size-checked while it
streams in, before any JSON parsing (``bodies.py``), so an oversized envelope costs at most 68 KiB
of memory.
The WebSocket hub (``ws.py``) is mounted from here too.
"""

from __future__ import annotations

import re
import time
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from chainchat_gateway import ws
from chainchat_gateway.deps import BusDep, SettingsDep
from chainchat_gateway.openapi import errors
from chainchat_gateway.security import CurrentUser
from chainchat_gateway.settings import GatewaySettings
from chainchat_protocol import chat
from chainchat_protocol.chat import (
    CONVERSATIONS_DEFAULT_LIMIT,
    CONVERSATIONS_MAX_LIMIT,
    HISTORY_DEFAULT_LIMIT,
    HISTORY_MAX_LIMIT,
    AckFrame,
    AddMembersBody,
    ChatErrorCode,
    ConversationList,
    ConversationPublic,
    ConversationSummary,
    CreateConversationBody,
    ErrorFrame,
    History,
    MarkReadBody,
    MessageRemoved,
    ReadPosition,
    SendResult,
    parse_send_body,
)
from chainchat_protocol.errors import ChainChatError, ErrorCode, NotFound
from chainchat_service.bus import Bus
from chainchat_service.runtime import ServiceRuntime

router = APIRouter(tags=["chat"])
router.include_router(ws.router)

_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def _conversation_id(conversation_id: str) -> str:
    # a malformed id names nothing: same answer as an unknown one (no 422 oracle on ids)
    if _ID.fullmatch(conversation_id) is None:
        raise NotFound("conversation not found", code=ChatErrorCode.CONVERSATION_NOT_FOUND)
    return conversation_id


def _message_id(message_id: str) -> str:
    if _ID.fullmatch(message_id) is None:
        raise NotFound("message not found", code=ChatErrorCode.MESSAGE_NOT_FOUND)
    return message_id


@router.post(
    "/conversations",
    status_code=201,
    response_model=ConversationPublic,
    summary="Start a conversation (an existing direct one is returned with 200)",
    responses={200: {"model": ConversationPublic, "description": "The existing direct conversation"}}
    | errors(403, 404, 409, 429),
)
async def create_conversation(
    body: CreateConversationBody, user: CurrentUser, bus: BusDep, settings: SettingsDep
) -> JSONResponse:
    req = chat.CreateConversationRequest(user_id=user.user_id, **body.model_dump())
    created = await bus.request(chat.CHAT_CONVERSATION_CREATE, req, timeout=settings.rpc_timeout_s)
    view = ConversationPublic.model_validate(created.model_dump())
    return JSONResponse(view.model_dump(mode="json"), status_code=201 if created.created else 200)


@router.get(
    "/conversations",
    response_model=ConversationList,
    summary="The caller's conversations, most recently active first (paged: has_more, next_cursor)",
)
async def list_conversations(
    user: CurrentUser,
    bus: BusDep,
    settings: SettingsDep,
    cursor: Annotated[str | None, Query(max_length=300, pattern=r"^[A-Za-z0-9_-]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=CONVERSATIONS_MAX_LIMIT)] = CONVERSATIONS_DEFAULT_LIMIT,
) -> ConversationList:
    req = chat.ConversationListRequest(user_id=user.user_id, cursor=cursor, limit=limit)
    return await bus.request(chat.CHAT_CONVERSATION_LIST, req, timeout=settings.rpc_timeout_s)


@router.get(
    "/conversations/{conversation_id}", response_model=ConversationSummary, summary="One conversation"
)
async def get_conversation(
    conversation_id: str, user: CurrentUser, bus: BusDep, settings: SettingsDep
) -> ConversationSummary:
    req = chat.ConversationRequest(user_id=user.user_id, conversation_id=_conversation_id(conversation_id))
    return await bus.request(chat.CHAT_CONVERSATION_GET, req, timeout=settings.rpc_timeout_s)


@router.post(
    "/conversations/{conversation_id}/members",
    response_model=ConversationPublic,
    summary="Add members to a group (group admins)",
    responses=errors(403, 409),
)
async def add_members(
    conversation_id: str, body: AddMembersBody, user: CurrentUser, bus: BusDep, settings: SettingsDep
) -> ConversationPublic:
    req = chat.AddMembersRequest(
        user_id=user.user_id, conversation_id=_conversation_id(conversation_id), user_ids=body.user_ids
    )
    return await bus.request(chat.CHAT_MEMBERS_ADD, req, timeout=settings.rpc_timeout_s)


@router.delete(
    "/conversations/{conversation_id}/members/{member_id}",
    status_code=204,
    summary="Remove a member (group admins), or leave (yourself)",
    responses=errors(403, 409),
)
async def remove_member(
    conversation_id: str, member_id: str, user: CurrentUser, bus: BusDep, settings: SettingsDep
) -> Response:
    if _ID.fullmatch(member_id) is None:
        raise NotFound("not a member of this conversation", code=ChatErrorCode.MEMBER_NOT_FOUND)
    req = chat.RemoveMemberRequest(
        user_id=user.user_id, conversation_id=_conversation_id(conversation_id), member_id=member_id
    )
    await bus.request(chat.CHAT_MEMBERS_REMOVE, req, timeout=settings.rpc_timeout_s)
    return Response(status_code=204)


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Inline ``$defs`` so the hand-parsed send body still documents itself in OpenAPI."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items()}
        return [walk(v) for v in node] if isinstance(node, list) else node

    result: dict[str, Any] = walk(schema)
    return result


_SEND_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": _inline_refs(chat.PostMessageBody.model_json_schema())}},
    }
}


@router.post(
    "/conversations/{conversation_id}/messages",
    status_code=201,
    response_model=SendResult,
    summary="Send an encrypted envelope",
    openapi_extra=_SEND_BODY_DOC,
    responses=errors(403, 409, 429)
    | {413: {"description": "envelope_too_large"}, 422: {"description": "invalid envelope"}},
)
async def post_message(
    conversation_id: str, request: Request, user: CurrentUser, bus: BusDep, settings: SettingsDep
) -> SendResult:
    cid = _conversation_id(conversation_id)
    body = parse_send_body(await request.body())  # capped at MAX_SEND_BODY_BYTES by bodies.py
    req = chat.PostMessageRequest(
        user_id=user.user_id, conversation_id=cid, envelope=body.envelope, client_id=body.client_id,
        file_ids=body.file_ids,
    )  # fmt: skip
    return await bus.request(chat.CHAT_MESSAGE_POST, req, timeout=settings.rpc_timeout_s)


@router.get(
    "/conversations/{conversation_id}/messages", response_model=History, summary="History, ascending by seq"
)
async def history(
    conversation_id: str,
    user: CurrentUser,
    bus: BusDep,
    settings: SettingsDep,
    after_seq: Annotated[int | None, Query(ge=0, le=2**53)] = None,
    before_seq: Annotated[int | None, Query(ge=0, le=2**53)] = None,
    limit: Annotated[int, Query(ge=1, le=HISTORY_MAX_LIMIT)] = HISTORY_DEFAULT_LIMIT,
) -> JSONResponse:
    req = chat.HistoryRequest(
        user_id=user.user_id, conversation_id=_conversation_id(conversation_id),
        after_seq=after_seq, before_seq=before_seq, limit=limit,
    )  # fmt: skip
    page = await bus.request(chat.CHAT_MESSAGE_HISTORY, req, timeout=settings.rpc_timeout_s)
    # tombstones carry no envelope fields: leave absent fields out rather than send nulls
    return JSONResponse({"messages": [m.wire() for m in page.messages], "has_more": page.has_more})


@router.delete(
    "/messages/{message_id}",
    response_model=MessageRemoved,
    summary="Delete (tombstone) a message",
    responses=errors(403, 409),
)
async def delete_message(
    message_id: str, user: CurrentUser, bus: BusDep, settings: SettingsDep
) -> MessageRemoved:
    req = chat.DeleteMessageRequest(
        user_id=user.user_id, message_id=_message_id(message_id), is_admin=user.role == "admin"
    )
    return await bus.request(chat.CHAT_MESSAGE_DELETE, req, timeout=settings.rpc_timeout_s)


@router.post(
    "/conversations/{conversation_id}/read", response_model=ReadPosition, summary="Mark read up to seq"
)
async def mark_read(
    conversation_id: str, body: MarkReadBody, user: CurrentUser, bus: BusDep, settings: SettingsDep
) -> ReadPosition:
    req = chat.MarkReadRequest(
        user_id=user.user_id, conversation_id=_conversation_id(conversation_id), seq=body.seq
    )
    return await bus.request(chat.CHAT_CONVERSATION_READ, req, timeout=settings.rpc_timeout_s)


# --- what chat frames on the WebSocket mean (the hub in ws.py moves them) --------------------------

TYPING_INTERVAL_S = 1.0


class ChatFrames:
    """``send`` → the same path as ``POST …/messages``, answered by ``ack`` or ``error``;
    ``typing`` → relayed by the chat service to the other members (at most one per second and
    conversation per connection; the excess is dropped, typing is only a hint)."""

    def __init__(self, bus: Bus, timeout_s: float) -> None:
        self.bus = bus
        self.timeout_s = timeout_s

    def handlers(self) -> dict[str, ws.FrameHandler]:
        return {"send": self.send, "typing": self.typing}

    async def send(self, conn: ws.Connection, frame: dict[str, Any]) -> BaseModel:
        client_id = frame.get("client_id") if isinstance(frame.get("client_id"), str) else None
        try:
            cid = frame.get("conversation_id")
            if not isinstance(cid, str) or _ID.fullmatch(cid) is None:
                raise NotFound("conversation not found", code=ChatErrorCode.CONVERSATION_NOT_FOUND)
            body = chat.validate_send_body(
                {k: v for k, v in frame.items() if k not in ("type", "conversation_id")}
            )
            # every part is validated already (the body just now, the ids above and by the token):
            # building the request without validating it all again is a tenth of a send's CPU here
            req = chat.PostMessageRequest.model_construct(
                user_id=conn.user_id, conversation_id=cid, envelope=body.envelope, client_id=body.client_id,
                file_ids=body.file_ids,
            )  # fmt: skip
            result = await self.bus.request(chat.CHAT_MESSAGE_POST, req, timeout=self.timeout_s)
            return AckFrame(client_id=client_id, message_id=result.message_id, seq=result.seq)
        except ChainChatError as exc:
            return ErrorFrame(code=exc.code, message=exc.message, client_id=client_id)

    async def typing(self, conn: ws.Connection, frame: dict[str, Any]) -> BaseModel | None:
        cid = frame.get("conversation_id")
        if not isinstance(cid, str) or _ID.fullmatch(cid) is None:
            return ErrorFrame(code=ErrorCode.VALIDATION_ERROR, message="typing needs a conversation_id")
        last: dict[str, float] = conn.state.setdefault("typing", {})
        now = time.monotonic()
        if now - last.get(cid, float("-inf")) < TYPING_INTERVAL_S:
            return None
        if len(last) > 256:
            last.clear()
        last[cid] = now
        try:
            req = chat.ConversationRequest(user_id=conn.user_id, conversation_id=cid)
            await self.bus.request(chat.CHAT_TYPING, req, timeout=self.timeout_s)
        except ChainChatError as exc:
            return ErrorFrame(code=exc.code, message=exc.message)
        return None


async def setup(app: FastAPI, runtime: ServiceRuntime) -> None:
    """Start the WebSocket hub (its NATS subscriptions follow the connected users)."""
    settings: GatewaySettings = app.state.settings
    await ws.setup(app, runtime, ChatFrames(runtime.bus, settings.rpc_timeout_s).handlers())


async def teardown(app: FastAPI, runtime: ServiceRuntime) -> None:
    await ws.teardown(app, runtime)
