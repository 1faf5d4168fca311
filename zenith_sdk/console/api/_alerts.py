"""Alerts: rules with their states, silences, mute windows, channels (secrets redacted), test notifications, history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from zenith_protocol import AlertConfig, AlertRule, AlertState, ChannelHealth, MuteWindow, Silence, SilenceMatchers
from zenith_protocol.alerts import Transition
from zenith_sdk.alerts import (
    add_mute,
    add_rule,
    add_silence,
    channel_health,
    end_silence,
    list_mutes,
    list_silences,
    load_config,
    load_rules,
    read_history,
    read_states,
    remove_mute,
    remove_rule,
    send_test,
    update_rule,
)
from zenith_sdk.console._models import ApiError, Camel
from zenith_sdk.console.api._deps import ERRORS, Actor, Console, WithToken

__all__ = ["router"]

router = APIRouter(prefix="/alerts", tags=["alerts"], responses=ERRORS)

WIRE = True
"""Rules, silences and the rest are shown in their wire form: a field that is absent is left out, not null."""


class RuleView(BaseModel):
    """A rule and the state of each subject it watches (``queue:emails``, ``node:api:web-1``, ...)."""

    rule: AlertRule
    states: dict[str, AlertState]


class Removed(BaseModel):
    """What was removed."""

    id: str
    removed: bool = True


class SilenceRequest(Camel):
    """Silence the alerts ``matchers`` select for ``durationS`` seconds from ``startsAt`` (default now)."""

    matchers: SilenceMatchers
    duration_s: float = Field(gt=0, le=366 * 86400)
    comment: str = Field(min_length=1, description="why")
    starts_at: int | None = Field(default=None, ge=0, le=2**53, description="epoch ms")


class MuteRequest(Camel):
    """Mute matching alerts from each time ``cron`` names (in ``timezone``), for ``durationMinutes``."""

    cron: str = Field(description="five fields, e.g. '0 22 * * 5'")
    duration_minutes: float = Field(gt=0, le=366 * 1440)
    timezone: str = "UTC"
    matchers: SilenceMatchers
    comment: str = ""


class Channels(BaseModel):
    """The channel settings (secrets redacted unless revealed) and each used channel's delivery health."""

    config: AlertConfig
    health: dict[str, ChannelHealth]


class DeliveryView(BaseModel):
    """How a test notification went (after the channel's retries)."""

    channel: str
    ok: bool
    attempts: int
    error: str | None = None
    status: int | None = Field(default=None, description="the HTTP status of the last attempt, for HTTP channels")


@router.get("/rules", response_model=list[RuleView], response_model_exclude_none=WIRE)
def get_rules(console: Console) -> list[RuleView]:
    """Every rule (the three defaults until the first edit), with its subjects' states."""
    rules = load_rules(console.client, keyspace=console.keyspace)
    states = read_states(console.client, keyspace=console.keyspace).states
    by_rule: dict[str, dict[str, AlertState]] = {rule.id: {} for rule in rules}
    for (rule_id, subject), value in sorted(states.items()):
        if rule_id in by_rule:
            by_rule[rule_id][subject] = value
    return [RuleView(rule=rule, states=by_rule[rule.id]) for rule in rules]


@router.post("/rules", response_model=AlertRule, response_model_exclude_none=WIRE)
def post_rule(rule: AlertRule, console: Console) -> AlertRule:
    """Add a rule (the first edit also writes the three default rules)."""
    add_rule(console.client, rule, keyspace=console.keyspace)
    return rule


@router.patch("/rules/{rule_id}", response_model=AlertRule, response_model_exclude_none=WIRE)
def patch_rule(
    rule_id: str,
    changes: Annotated[
        dict[str, Any],
        Body(description="fields to change, by wire name (threshold, forSeconds, ...); null removes one"),
    ],
    console: Console,
) -> AlertRule:
    """Change fields of a rule; the rule is validated again as a whole."""
    if not changes:
        raise ValueError('nothing to change: send the fields to change, such as {"threshold": 500}')
    return update_rule(console.client, rule_id, changes, keyspace=console.keyspace)


@router.delete("/rules/{rule_id}", response_model=Removed)
def delete_rule(rule_id: str, console: Console) -> Removed:
    """Remove a rule."""
    remove_rule(console.client, rule_id, keyspace=console.keyspace)
    return Removed(id=rule_id)


@router.get("/silences", response_model=list[Silence], response_model_exclude_none=WIRE)
def get_silences(console: Console, include_ended: Annotated[bool, Query(alias="all")] = False) -> list[Silence]:
    """Silences in force or to come (``all``: ended ones too), by start time."""
    return list_silences(console.client, keyspace=console.keyspace, include_ended=include_ended)


@router.post("/silences", response_model=Silence, response_model_exclude_none=WIRE)
def post_silence(body: SilenceRequest, console: Console, actor: Actor) -> Silence:
    """Silence matching alerts for a while; the caller is its author."""
    return add_silence(
        console.client,
        matchers=body.matchers,
        duration_s=body.duration_s,
        comment=body.comment,
        author=actor,
        starts_at_ms=body.starts_at,
        keyspace=console.keyspace,
    )


@router.post("/silences/{silence_id}/end", response_model=Silence, response_model_exclude_none=WIRE)
def post_end_silence(silence_id: str, console: Console, actor: Actor) -> Silence:
    """End a silence now (it stays listed as ended for a day)."""
    return end_silence(console.client, silence_id, actor=actor, keyspace=console.keyspace)


@router.get("/mutes", response_model=list[MuteWindow], response_model_exclude_none=WIRE)
def get_mutes(console: Console) -> list[MuteWindow]:
    """Every recurring mute window."""
    return list_mutes(console.client, keyspace=console.keyspace)


@router.post("/mutes", response_model=MuteWindow, response_model_exclude_none=WIRE)
def post_mute(body: MuteRequest, console: Console, actor: Actor) -> MuteWindow:
    """Add a recurring mute window."""
    return add_mute(
        console.client,
        cron=body.cron,
        duration_minutes=body.duration_minutes,
        matchers=body.matchers,
        timezone_name=body.timezone,
        comment=body.comment,
        actor=actor,
        keyspace=console.keyspace,
    )


@router.delete("/mutes/{mute_id}", response_model=Removed)
def delete_mute(mute_id: str, console: Console, actor: Actor) -> Removed:
    """Delete a mute window."""
    remove_mute(console.client, mute_id, actor=actor, keyspace=console.keyspace)
    return Removed(id=mute_id)


@router.get(
    "/channels",
    response_model=Channels,
    response_model_exclude_none=WIRE,
    responses={403: {"model": ApiError, "description": "no API token"}},
)
def get_channels(console: Console, with_token: WithToken, reveal: bool = False) -> Channels | JSONResponse:
    """Channel settings with secrets redacted; ``reveal=true`` shows them, to API token callers only."""
    if reveal and not with_token:
        refusal = "revealing channel secrets needs an API token (Authorization: Bearer, see ZENITH_API_TOKENS)"
        return JSONResponse({"error": refusal}, status_code=403)
    config = load_config(console.client, keyspace=console.keyspace, reveal=reveal)
    return Channels(config=config, health=channel_health(console.client, keyspace=console.keyspace))


@router.post("/channels/{channel}/test", response_model=DeliveryView)
def post_test(channel: str, console: Console) -> DeliveryView:
    """Send a test notification to a channel (``slack``, ``discord``, ``email``, ``webhook:NAME``), enabled or not."""
    config = load_config(console.client, keyspace=console.keyspace, reveal=True)
    delivery = send_test(config, channel)
    return DeliveryView(
        channel=delivery.channel, ok=delivery.ok, attempts=delivery.attempts, error=delivery.error,
        status=delivery.status,
    )  # fmt: skip


@router.get("/history", response_model=list[Transition], response_model_exclude_none=WIRE)
def get_history(console: Console, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[Transition]:
    """The latest alert state changes, newest first."""
    return read_history(console.client, keyspace=console.keyspace, limit=limit)
