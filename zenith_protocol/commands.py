"""Remote commands published to agents, and the replies this protocol adds."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

from pydantic import Field

from zenith_protocol._types import EpochMs, ProtocolVersion, WireModel
from zenith_protocol.version import PROTOCOL_VERSION

__all__ = ["BROADCAST_NODE", "CommandPayload", "CommandReply", "CommandType", "RemoteCommand"]

BROADCAST_NODE = "*"


class CommandType(str, Enum):
    """Command types; agents execute only the ones on their allow-list."""

    RETRY_JOB = "RETRY_JOB"
    DELETE_JOB = "DELETE_JOB"
    LARAVEL_ACTION = "LARAVEL_ACTION"


class CommandPayload(WireModel):
    """What a command acts on."""

    queue: str
    job_id: str | None = Field(default=None, alias="jobId")
    job_key: str | None = Field(default=None, alias="jobKey")
    driver: str | None = None
    action: str | None = None


class RemoteCommand(WireModel):
    """A command for one node (or ``*``, every node of a service)."""

    id: str = Field(min_length=1)
    type: Annotated[CommandType | str, Field(union_mode="left_to_right")]
    target_node_id: str = Field(alias="targetNodeId")
    payload: CommandPayload
    timestamp: EpochMs
    issuer: str | None = None
    reply_to: str | None = Field(default=None, alias="replyTo", description="channel to publish the reply on")
    protocol_version: ProtocolVersion = PROTOCOL_VERSION


class CommandReply(WireModel):
    """A node's answer to a command (new in protocol 2)."""

    command_id: str = Field(alias="commandId")
    node_id: str = Field(alias="nodeId")
    ok: bool
    message: str = ""
    timestamp: EpochMs
    protocol_version: ProtocolVersion = PROTOCOL_VERSION
