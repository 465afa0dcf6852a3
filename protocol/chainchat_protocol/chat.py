"""Chat domain schemas: HTTP bodies, NATS request/reply models, events, WebSocket frames, subjects.

Every request the gateway sends to ``chat`` carries the verified caller (``user_id``); the chat
service trusts it because only gateways and services speak on the internal bus.

Events the chat service publishes:

* deliveries for gateways (core NATS, best effort, right after the commit) on
  ``Subject.DELIVERY_TO_USER`` — one per member user; the payload is the server→client WebSocket
  frame itself (``MessageFrame``, ``ReceiptFrame``, ``DeletedFrame``, ``TypingFrame``,
  ``AnchoredFrame``, ``KeyChangedFrame``, ``ConversationFrame``), so a gateway forwards the bytes
  unchanged. A client that missed some catches up with ``after_seq``;
* ``chat.message.posted.v1`` (``MessagePosted``, only for messages that declare ``file_ids``) and
  ``chat.message.deleted.v1`` (``MessageDeleted``): written to the outbox in the transaction of the
  change and published to JetStream (stream ``CHAT_EVENTS``, ``Nats-Msg-Id`` = ``posted:<id>`` /
  ``deleted:<id>``), so they survive a files-service outage. A JetStream publish also reaches plain
  core NATS subscribers, so consumers choose: a durable consumer (nothing lost) or a subscription;
* ``message`` and ``tombstone`` log entries for the ledger (``Subject.LEDGER_ENTRY``, outbox).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from chainchat_protocol.envelope import MAX_ENVELOPE_BYTES, Envelope, Identifier
from chainchat_protocol.errors import ChainChatError, ErrorCode, PayloadTooLarge, ValidationFailed
from chainchat_protocol.rpc import Empty, Rpc

ConversationKind = Literal["direct", "group"]
MemberRole = Literal["admin", "member"]

MAX_GROUP_MEMBERS = 256
MAX_FILE_IDS = 32
HISTORY_DEFAULT_LIMIT = 50
HISTORY_MAX_LIMIT = 200
CONVERSATIONS_DEFAULT_LIMIT = 100
CONVERSATIONS_MAX_LIMIT = 200
# the JSON around an envelope (client_id, file_ids, whitespace) may add this much to a send body
BODY_OVERHEAD_BYTES = 4 * 1024
MAX_SEND_BODY_BYTES = MAX_ENVELOPE_BYTES + BODY_OVERHEAD_BYTES

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ClientId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]
Seq = Annotated[int, Field(ge=0, le=2**53)]
# a user named in a request body: auth's user ids are at most 64 characters, so a longer one names
# no user and must be refused here (422), not passed on to a directory that rejects it
MemberId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class ChatSubject:
    """JetStream stream and event subjects of the chat domain (RPC subjects: the constants below)."""

    EVENTS_STREAM = "CHAT_EVENTS"
    MESSAGE_POSTED = "chat.message.posted.v1"
    MESSAGE_DELETED = "chat.message.deleted.v1"
    MESSAGE_EVENTS = "chat.message.*.v1"  # both of the above (the files service consumes them)


class ChatErrorCode:
    """Stable error codes of the chat API (clients switch on them)."""

    CONVERSATION_NOT_FOUND = "conversation_not_found"
    MESSAGE_NOT_FOUND = "message_not_found"
    MEMBERS_REQUIRED = "members_required"
    UNKNOWN_USERS = "unknown_users"
    TOO_MANY_MEMBERS = "too_many_members"
    DIRECT_CONVERSATION = "direct_conversation"
    NOT_GROUP_ADMIN = "not_group_admin"
    NOT_MESSAGE_SENDER = "not_message_sender"
    MEMBER_NOT_FOUND = "member_not_found"
    INVALID_ENVELOPE = "invalid_envelope"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNSUPPORTED_SUITE = "unsupported_suite"
    ENVELOPE_TOO_LARGE = "envelope_too_large"
    CONVERSATION_MISMATCH = "conversation_mismatch"
    SENDER_MISMATCH = "sender_mismatch"
    UNKNOWN_SENDER_KEY = "unknown_sender_key"
    RECIPIENTS_MISMATCH = "recipients_mismatch"
    SEQ_OUT_OF_RANGE = "seq_out_of_range"
    INVALID_CURSOR = "invalid_cursor"
    STORAGE_BUSY = "storage_busy"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- HTTP bodies (the gateway validates them; the NATS requests extend them) ---------------------


class CreateConversationBody(_Body):
    member_ids: list[MemberId] = Field(min_length=1, max_length=MAX_GROUP_MEMBERS)
    title: Title | None = None
    # inferred when absent: one other member and no title is a direct conversation
    kind: ConversationKind | None = None


class AddMembersBody(_Body):
    user_ids: list[MemberId] = Field(min_length=1, max_length=MAX_GROUP_MEMBERS)


class PostMessageBody(_Body):
    envelope: Envelope
    client_id: ClientId | None = None
    # attachments the sender declares (the body is encrypted): the files service counts references
    file_ids: list[Identifier] = Field(default_factory=list, max_length=MAX_FILE_IDS)


class MarkReadBody(_Body):
    seq: Seq


def parse_send_body(raw: bytes | str) -> PostMessageBody:
    """Validate the body of a send (HTTP body or WebSocket frame without ``type`` and
    ``conversation_id``) and raise the SPEC error a client can switch on: 413
    ``envelope_too_large``, 422 ``unsupported_version`` / ``unsupported_suite`` /
    ``invalid_envelope`` / ``validation_error``. Size is checked before any parsing."""
    if len(raw) > MAX_SEND_BODY_BYTES:
        raise envelope_too_large()
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise ValidationFailed(
            "the request body is not valid JSON", code=ErrorCode.VALIDATION_ERROR
        ) from None
    return validate_send_body(data)


def validate_send_body(data: Any) -> PostMessageBody:
    """:func:`parse_send_body` for an already decoded JSON value."""
    try:
        return PostMessageBody.model_validate(data)
    except ValidationError as exc:
        raise send_body_error(exc) from None


def envelope_too_large() -> PayloadTooLarge:
    """413 ``envelope_too_large``."""
    return PayloadTooLarge(
        f"an envelope may be at most {MAX_ENVELOPE_BYTES} bytes", code=ChatErrorCode.ENVELOPE_TOO_LARGE
    )


def send_body_error(exc: ValidationError) -> ChainChatError:
    """The most specific SPEC error for an invalid send body."""
    errors = exc.errors()
    for err in errors:
        if "larger than" in str(err.get("msg", "")):
            return envelope_too_large()
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        if loc[:2] == ["envelope", "v"]:
            return ValidationFailed("unsupported envelope version", code=ChatErrorCode.UNSUPPORTED_VERSION)
        if loc[:2] == ["envelope", "suite"]:
            return ValidationFailed("unsupported envelope suite", code=ChatErrorCode.UNSUPPORTED_SUITE)
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ())]
    where = ".".join(loc) or "body"
    message = f"{where}: {first.get('msg', 'invalid value')}"
    if loc[:1] == ["envelope"] and len(loc) > 1:
        return ValidationFailed(f"invalid envelope: {message}", code=ChatErrorCode.INVALID_ENVELOPE)
    if loc == ["envelope"] and first.get("type") != "missing":
        return ValidationFailed(f"invalid envelope: {message}", code=ChatErrorCode.INVALID_ENVELOPE)
    return ValidationFailed(message, code=ErrorCode.VALIDATION_ERROR)


# --- NATS requests ---------------------------------------------------------------------------------


class CallerRequest(BaseModel):
    """Base of every request: the verified caller."""

    user_id: Identifier


class ConversationRequest(CallerRequest):
    conversation_id: Identifier


class CreateConversationRequest(CreateConversationBody, CallerRequest):
    pass


class AddMembersRequest(AddMembersBody, ConversationRequest):
    pass


class RemoveMemberRequest(ConversationRequest):
    member_id: Identifier


class PostMessageRequest(PostMessageBody, ConversationRequest):
    pass


class ConversationListRequest(CallerRequest):
    """A page of the caller's conversations, most recently active first; ``cursor`` is the
    ``next_cursor`` of the page before (opaque to clients)."""

    cursor: str | None = Field(default=None, max_length=300, pattern=r"^[A-Za-z0-9_-]+$")
    limit: int = Field(default=CONVERSATIONS_DEFAULT_LIMIT, ge=1, le=CONVERSATIONS_MAX_LIMIT)


class HistoryRequest(ConversationRequest):
    after_seq: Seq | None = None
    before_seq: Seq | None = None
    limit: int = Field(default=HISTORY_DEFAULT_LIMIT, ge=1, le=HISTORY_MAX_LIMIT)


class DeleteMessageRequest(CallerRequest):
    message_id: Identifier
    # platform admins may delete any message (moderation); the gateway sets it from the token
    is_admin: bool = False


class MarkReadRequest(MarkReadBody, ConversationRequest):
    pass


class MessageAccessRequest(CallerRequest):
    message_id: Identifier


# --- replies -----------------------------------------------------------------------------------


class ConversationPublic(BaseModel):
    conversation_id: str
    kind: ConversationKind
    title: str | None = None
    members: list[str]
    admins: list[str]
    created_by: str
    created_at: str


class ConversationCreated(ConversationPublic):
    # False when an existing direct conversation is returned (HTTP 200 instead of 201)
    created: bool


class ConversationSummary(ConversationPublic):
    last_seq: int
    read_seq: int
    unread_count: int
    last_message_at: str | None = None


class ConversationList(BaseModel):
    """One page of conversations, most recently active first. ``has_more``: ask again with
    ``cursor=next_cursor`` for the next page (a page holds fewer than ``limit`` when they would not
    fit in one reply)."""

    conversations: list[ConversationSummary]
    has_more: bool = False
    next_cursor: str | None = None


class SendResult(BaseModel):
    message_id: str
    conversation_id: str
    seq: int
    digest: str
    created_at: str


class RecipientView(BaseModel):
    """A recipient entry as stored (validated once, on the way in: reads stay cheap)."""

    user_id: str
    key_id: str
    enc: str
    wrapped_key: str


class MessageView(BaseModel):
    """A stored message as clients read it: the envelope fields plus server metadata.

    A deleted message is a tombstone: ``deleted`` is true and the envelope's cryptographic fields
    (nonce, ciphertext, recipients, signature) are gone.
    """

    message_id: str
    seq: int
    created_at: str
    deleted: bool = False
    deleted_at: str | None = None
    conversation_id: str
    sender_id: str
    v: int | None = None
    suite: str | None = None
    sender_key_id: str | None = None
    key_commit: str | None = None  # envelope v2
    nonce: str | None = None
    ciphertext: str | None = None
    recipients: list[RecipientView] | None = None
    signature: str | None = None

    def wire(self) -> dict[str, Any]:
        """JSON object without absent fields (tombstones carry no envelope fields)."""
        return self.model_dump(mode="json", exclude_none=True)


class History(BaseModel):
    """One page of history, ascending by seq. ``has_more``: more messages lie beyond this page in
    the direction read (after the last one when reading with ``after_seq``, else before the first);
    a page may hold fewer than ``limit`` messages when they would not fit in one reply."""

    messages: list[MessageView]
    has_more: bool = False


class MessageRemoved(BaseModel):
    message_id: str
    conversation_id: str
    seq: int
    deleted_at: str


class ReadPosition(BaseModel):
    conversation_id: str
    seq: int
    unread_count: int


class MessageAccess(BaseModel):
    conversation_id: str
    message_id: str


class Membership(BaseModel):
    conversation_id: str
    user_id: str
    role: MemberRole


# --- events --------------------------------------------------------------------------------------


class MessagePosted(BaseModel):
    """On ``chat.message.posted.v1`` when a message declares attachments (``file_ids``)."""

    message_id: str
    conversation_id: str
    sender_id: str
    seq: int
    file_ids: list[str]
    created_at: str


class MessageDeleted(BaseModel):
    """On ``chat.message.deleted.v1``: the files the message referenced may be unpinned."""

    message_id: str
    conversation_id: str
    file_ids: list[str]


# --- WebSocket frames, server → client (also the payload of deliveries) ------------------------------


class MessageFrame(BaseModel):
    type: Literal["message"] = "message"
    conversation_id: str
    message: dict[str, Any]


class ReceiptFrame(BaseModel):
    type: Literal["receipt"] = "receipt"
    conversation_id: str
    user_id: str
    seq: int


class DeletedFrame(BaseModel):
    type: Literal["deleted"] = "deleted"
    conversation_id: str
    message_id: str
    seq: int


class TypingFrame(BaseModel):
    type: Literal["typing"] = "typing"
    conversation_id: str
    user_id: str


class AnchoredFrame(BaseModel):
    type: Literal["anchored"] = "anchored"
    message_ids: list[str]
    head_index: int


class KeyChangedFrame(BaseModel):
    type: Literal["key_changed"] = "key_changed"
    user_id: str


class DeviceAddedFrame(BaseModel):
    """To the owner's connected devices when a device key is added to the account (SPEC §11)."""

    type: Literal["device_added"] = "device_added"
    user_id: str
    key_id: str
    label: str | None = None
    at: str


class ConversationFrame(BaseModel):
    """Membership changed: ``created`` / ``members_changed`` carry the conversation, ``removed``
    tells a former member it is gone (no further frames for it)."""

    type: Literal["conversation"] = "conversation"
    event: Literal["created", "members_changed", "removed"]
    conversation_id: str
    conversation: ConversationPublic | None = None


class AckFrame(BaseModel):
    type: Literal["ack"] = "ack"
    client_id: str | None
    message_id: str
    seq: int


class ErrorFrame(BaseModel):
    type: Literal["error"] = "error"
    code: str
    message: str
    client_id: str | None = None
    # seconds to wait before sending again (``rate_limited``)
    retry_after: float | None = None


class ReadyFrame(BaseModel):
    """Sent once the connection is authenticated and subscribed: nothing after it is missed."""

    type: Literal["ready"] = "ready"
    user_id: str


class PongFrame(BaseModel):
    type: Literal["pong"] = "pong"


# --- WebSocket frames, client → server ------------------------------------------------------------


class AuthFrame(_Body):
    type: Literal["auth"]
    token: Annotated[str, StringConstraints(min_length=1, max_length=8192)]


class SendFrame(PostMessageBody):
    """A send over the socket: the body of ``POST …/messages`` plus where it goes; answered by
    ``ack`` or ``error`` with the same ``client_id``."""

    type: Literal["send"]
    conversation_id: str


class TypingNoticeFrame(_Body):
    """The sender is typing in ``conversation_id`` (relayed to the others as ``TypingFrame``)."""

    type: Literal["typing"]
    conversation_id: str


class PingFrame(_Body):
    """Keeps an idle connection open; answered by ``pong``."""

    type: Literal["ping"]


# --- subjects ------------------------------------------------------------------------------------

CHAT_CONVERSATION_CREATE = Rpc("chat.conversation.create.v1", CreateConversationRequest, ConversationCreated)
CHAT_CONVERSATION_LIST = Rpc("chat.conversation.list.v1", ConversationListRequest, ConversationList)
CHAT_CONVERSATION_GET = Rpc("chat.conversation.get.v1", ConversationRequest, ConversationSummary)
CHAT_MEMBERS_ADD = Rpc("chat.members.add.v1", AddMembersRequest, ConversationPublic)
CHAT_MEMBERS_REMOVE = Rpc("chat.members.remove.v1", RemoveMemberRequest, Empty)
CHAT_MESSAGE_POST = Rpc("chat.message.post.v1", PostMessageRequest, SendResult)
CHAT_MESSAGE_HISTORY = Rpc("chat.message.history.v1", HistoryRequest, History)
CHAT_MESSAGE_DELETE = Rpc("chat.message.delete.v1", DeleteMessageRequest, MessageRemoved)
CHAT_CONVERSATION_READ = Rpc("chat.conversation.read.v1", MarkReadRequest, ReadPosition)
CHAT_TYPING = Rpc("chat.typing.v1", ConversationRequest, Empty)
# for the ledger's proof route: may this user see this message? NotFound otherwise
CHAT_MESSAGE_ACCESS = Rpc("chat.message.access.v1", MessageAccessRequest, MessageAccess)
# for the files service: is this user a member of this conversation? NotFound otherwise
CHAT_CONVERSATION_MEMBER = Rpc("chat.conversation.member.v1", ConversationRequest, Membership)
