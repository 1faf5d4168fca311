"""The protocol version this package writes and the rule for reading others."""

from __future__ import annotations

__all__ = ["LEGACY_VERSION", "PROTOCOL_VERSION"]

PROTOCOL_VERSION = 2
"""Major version written in ``protocolVersion`` by every writer of this package.

Within a major version only additive changes are allowed (new optional fields,
new enum values that readers map to a documented fallback), so a reader of
version N reads anything a writer of version N wrote, older or newer.
"""

LEGACY_VERSION = 1
"""What an absent ``protocolVersion`` means: the forms written by the Node.js system."""
