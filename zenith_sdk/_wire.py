"""Text as it crosses Redis: reply values to ``str``, and ``str`` values that UTF-8 can carry."""

from __future__ import annotations

__all__ = ["storable", "text_of"]


def text_of(value: bytes | str) -> str:
    """A reply value (bytes, or text from a client that decodes replies) as text."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def storable(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD, as a JavaScript writer stores it.

    A decoded job may hold one (JSON can escape it); Redis gets UTF-8, which cannot carry it.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text
