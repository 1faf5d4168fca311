"""Alert rules and channel settings at their legacy keys, edited with a compare-and-set (PROTOCOL 10.1, 10.3).

An absent rules key means the three default rules; the first edit writes them plus the change.
Every edit reads the value, changes it and writes it back only if nobody wrote in between (the
compare_and_set script), repeating a bounded number of times before it gives up with
:class:`~zenith_protocol.ConflictError`. Rules and settings the Node console wrote load unchanged,
and fields this package does not know are kept when it writes them back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import redis

from zenith_protocol import (
    AlertConfig,
    AlertRule,
    ConflictError,
    KeySpace,
    NotFoundError,
    _json,
    decode_alert_config,
    decode_alert_rules,
    encode_alert_config,
    encode_alert_rules,
)
from zenith_sdk.alerts.channels import redact
from zenith_sdk.scripts import COMPARE_AND_SET, scripts_for

__all__ = [
    "EDIT_ATTEMPTS",
    "REDACTED",
    "add_rule",
    "edit_config",
    "edit_rules",
    "keep_secrets",
    "load_config",
    "load_rules",
    "redact_config",
    "remove_rule",
    "save_config",
    "update_rule",
]

EDIT_ATTEMPTS = 5
"""How many times an edit is tried against concurrent writers before :class:`ConflictError`."""

T = TypeVar("T")


def _space(keyspace: KeySpace | None) -> KeySpace:
    return keyspace or KeySpace()


def _edit(
    client: redis.Redis,
    key: str,
    what: str,
    decode: Callable[[Any], T],
    change: Callable[[T], T],
    encode: Callable[[T], str],
    attempts: int,
) -> T:
    """Read ``key``, apply ``change`` and write the result if the key still holds what was read."""
    scripts = scripts_for(client)
    for _ in range(attempts):
        raw: bytes | str | None = client.get(key)
        updated = change(decode(raw))
        args = ["1" if raw is not None else "0", raw if raw is not None else "", encode(updated)]
        if scripts.call(COMPARE_AND_SET, [key], args):
            return updated
    raise ConflictError(what, attempts)


# -- rules -----------------------------------------------------------------------------------------


def load_rules(client: redis.Redis, *, keyspace: KeySpace | None = None) -> list[AlertRule]:
    """The alert rules; the three defaults when the key is absent (an empty array means no rules).

    Raises:
        ProtocolError: the stored value is not a rules array (``zenith doctor`` shows it).
    """
    return list(decode_alert_rules(client.get(_space(keyspace).alert_rules())))


def edit_rules(
    client: redis.Redis,
    change: Callable[[list[AlertRule]], Sequence[AlertRule]],
    *,
    keyspace: KeySpace | None = None,
    attempts: int = EDIT_ATTEMPTS,
) -> list[AlertRule]:
    """Apply ``change`` to the rules as a compare-and-set and return the rules written.

    ``change`` may be called more than once (once per attempt): it must not have side effects.

    Raises:
        ConflictError: other writers changed the rules on every attempt.
    """

    def apply(rules: list[AlertRule]) -> list[AlertRule]:
        updated = list(change(list(rules)))
        ids = [rule.id for rule in updated]
        duplicated = sorted({rule_id for rule_id in ids if ids.count(rule_id) > 1})
        if duplicated:
            raise ValueError(f"rule ids must be unique; {', '.join(duplicated)} would appear twice")
        return updated

    return _edit(
        client,
        _space(keyspace).alert_rules(),
        "alert rules",
        lambda raw: list(decode_alert_rules(raw)),
        apply,
        encode_alert_rules,
        attempts,
    )


def add_rule(client: redis.Redis, rule: AlertRule, *, keyspace: KeySpace | None = None) -> list[AlertRule]:
    """Add ``rule`` (the defaults are written too when the key was absent); returns the rules written.

    Raises:
        ValueError: a rule with that id exists.
    """

    def change(rules: list[AlertRule]) -> list[AlertRule]:
        if any(existing.id == rule.id for existing in rules):
            raise ValueError(f"a rule with id {rule.id!r} exists; edit it or pick another id")
        return [*rules, rule]

    return edit_rules(client, change, keyspace=keyspace)


def _find(rules: list[AlertRule], rule_id: str) -> int:
    for index, rule in enumerate(rules):
        if rule.id == rule_id:
            return index
    raise NotFoundError("alert rule", rule_id, hint="`zenith alerts rules` lists them")


def remove_rule(client: redis.Redis, rule_id: str, *, keyspace: KeySpace | None = None) -> list[AlertRule]:
    """Remove the rule ``rule_id``; returns the rules written.

    Raises:
        NotFoundError: no such rule.
    """

    def change(rules: list[AlertRule]) -> list[AlertRule]:
        index = _find(rules, rule_id)
        return rules[:index] + rules[index + 1 :]

    return edit_rules(client, change, keyspace=keyspace)


def update_rule(
    client: redis.Redis, rule_id: str, changes: dict[str, Any], *, keyspace: KeySpace | None = None
) -> AlertRule:
    """Change fields of the rule ``rule_id`` (Python or wire names; ``None`` removes an optional field).

    The rule is validated again as a whole, and fields it has that this package does not know are kept.

    Raises:
        NotFoundError: no such rule.
        pydantic.ValidationError: the rule would be invalid.
    """
    if "id" in changes and changes["id"] != rule_id:
        raise ValueError("a rule's id cannot change; add a new rule and remove this one")
    updated: list[AlertRule] = []

    def change(rules: list[AlertRule]) -> list[AlertRule]:
        index = _find(rules, rule_id)
        fields = rules[index].model_dump(by_alias=True, exclude_none=True)
        for name, value in changes.items():
            wire = _wire_name(name)
            if value is None:
                fields.pop(wire, None)
            else:
                fields[wire] = value
        rule = AlertRule.model_validate(fields)
        updated[:] = [rule]
        return [*rules[:index], rule, *rules[index + 1 :]]

    edit_rules(client, change, keyspace=keyspace)
    return updated[0]


def _wire_name(name: str) -> str:
    info = AlertRule.model_fields.get(name)
    return info.alias or name if info is not None else name


# -- channel settings ------------------------------------------------------------------------------


def load_config(client: redis.Redis, *, keyspace: KeySpace | None = None, reveal: bool = False) -> AlertConfig:
    """The notification channel settings (defaults when absent), secrets redacted unless ``reveal``.

    Raises:
        ProtocolError: the stored value does not decode.
    """
    raw = client.get(_space(keyspace).alert_config())
    config = decode_alert_config(raw) if raw is not None else AlertConfig()
    return config if reveal else redact_config(config)


def edit_config(
    client: redis.Redis,
    change: Callable[[AlertConfig], AlertConfig],
    *,
    keyspace: KeySpace | None = None,
    attempts: int = EDIT_ATTEMPTS,
) -> AlertConfig:
    """Apply ``change`` to the settings (secrets revealed to it) as a compare-and-set; returns what was written.

    Raises:
        ConflictError: other writers changed the settings on every attempt.
    """
    return _edit(
        client,
        _space(keyspace).alert_config(),
        "alert channel settings",
        lambda raw: decode_alert_config(raw) if raw is not None else AlertConfig(),
        change,
        encode_alert_config,
        attempts,
    )


def save_config(client: redis.Redis, config: AlertConfig, *, keyspace: KeySpace | None = None) -> AlertConfig:
    """Store ``config``; a secret given in its redacted form keeps the stored secret (so a redacted read can be saved).

    Returns the settings written, redacted.
    """
    written = edit_config(client, lambda current: keep_secrets(config, current), keyspace=keyspace)
    return redact_config(written)


REDACTED = "***"
"""What a secret reads as in redacted settings."""

_SECRET_MEMBERS = frozenset({"webhookUrl", "smtpPass", "secret", "url"})
"""Wire names of the members that are credentials (an incoming-webhook URL is one)."""


def _redact_value(name: str, value: Any) -> Any:
    if not isinstance(value, str) or not value:
        return value
    # A URL keeps its scheme and host (which service it is), as the channels' errors show it.
    return redact(value) if name in ("webhookUrl", "url") and "://" in value else REDACTED


def _walk(document: Any, leaf: Callable[[str, Any, Any], Any], other: Any = None) -> Any:
    """``document`` with each secret member replaced by ``leaf(name, value, the same member of other)``."""
    if isinstance(document, dict):
        out = {}
        for name, value in document.items():
            theirs = other.get(name) if isinstance(other, dict) else None
            if name in _SECRET_MEMBERS and not isinstance(value, (dict, list)):
                out[name] = leaf(name, value, theirs)
            else:
                out[name] = _walk(value, leaf, theirs)
        return out
    if isinstance(document, list):
        others = other if isinstance(other, list) else []
        return [_walk(item, leaf, others[i] if i < len(others) else None) for i, item in enumerate(document)]
    return document


def _wire(config: AlertConfig) -> Any:
    return _json.loads(encode_alert_config(config))


def redact_config(config: AlertConfig) -> AlertConfig:
    """``config`` with every secret (webhook URLs, SMTP password, signing keys) redacted."""
    return decode_alert_config_document(_walk(_wire(config), lambda name, value, _: _redact_value(name, value)))


def keep_secrets(config: AlertConfig, stored: AlertConfig) -> AlertConfig:
    """``config`` with each secret given in redacted form replaced by the one ``stored`` holds there."""

    def keep(name: str, value: Any, theirs: Any) -> Any:
        redacted = isinstance(value, str) and value.endswith(REDACTED)
        return theirs if redacted and theirs is not None else value

    return decode_alert_config_document(_walk(_wire(config), keep, _wire(stored)))


def decode_alert_config_document(document: Any) -> AlertConfig:
    """Settings from their JSON document (already parsed)."""
    return decode_alert_config(_json.dumps(document))
