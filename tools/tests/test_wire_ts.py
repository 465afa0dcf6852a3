"""tools/wire_ts.py: models in, TypeScript out; the committed web/src/wire.ts is what it writes."""

from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field, create_model

from chainchat_protocol import chat
from tools import wire_ts


class Part(BaseModel):
    """One part, ``quoted``."""

    name: str
    size: int | None = None


class BigPart(Part):
    """A part that is weighed."""

    weight: int
    size: int  # required here


class Order(BaseModel):
    type: Literal["order"] = "order"
    parts: list[Part]
    state: Literal["open", "shipped"] = "open"
    tags: dict[str, int] = Field(default_factory=dict)
    note: str | None = Field(default=None, description="free text")
    extra: dict[str, Any]
    ids: list[str | int]


class Ping(BaseModel):
    type: Literal["ping"]


EXPECTED = (
    wire_ts.HEADER
    + """
/** A part that is weighed. */
export interface BigPart extends Part {
  size: number;
  weight: number;
}

export interface Order {
  type: "order";
  parts: Part[];
  state?: "open" | "shipped";
  tags?: { [key: string]: number };
  /** free text */
  note?: string | null;
  extra: { [key: string]: unknown };
  ids: (string | number)[];
}

/** One part, `quoted`. */
export interface Part {
  name: string;
  size?: number | null;
}

export interface Ping {
  type: "ping";
}

/** What the gateway sends on /api/v1/ws (by `type`). */
export type ServerFrame =
  | Order;

/** What the browser sends on /api/v1/ws (by `type`). */
export type ClientFrame =
  | Ping;
"""
)


def test_models_become_interfaces_and_frame_unions() -> None:
    assert wire_ts.render([Part, BigPart], [Order], [Ping]) == EXPECTED


def test_an_inline_object_is_refused() -> None:
    with pytest.raises(wire_ts.UnsupportedSchema, match="inline object"):
        wire_ts.ts_type({"type": "object", "properties": {"a": {"type": "string"}}})


def test_two_schemas_of_one_name_are_refused() -> None:
    one, other = create_model("Twin", a=(str, ...)), create_model("Twin", b=(int, ...))
    with pytest.raises(wire_ts.UnsupportedSchema, match="Twin"):
        wire_ts.collect([one, other])


def test_every_frame_type_is_named_once_per_direction() -> None:
    for frames in (wire_ts.SERVER_FRAMES, wire_ts.CLIENT_FRAMES):
        kinds = [m.model_fields["type"].annotation for m in frames]
        assert len(set(kinds)) == len(kinds)


def test_the_send_frame_is_a_send_body_with_its_destination() -> None:
    # the gateway validates a send frame without these two keys as a PostMessageBody
    assert set(chat.SendFrame.model_fields) == {"type", "conversation_id", *chat.PostMessageBody.model_fields}


def test_committed_wire_ts_is_up_to_date() -> None:
    assert wire_ts.WIRE_TS.read_text(encoding="utf-8") == wire_ts.render(), (
        "web/src/wire.ts is stale: run `.venv/bin/python -m tools.wire_ts`"
    )
    assert wire_ts.main(["--check"]) == 0
