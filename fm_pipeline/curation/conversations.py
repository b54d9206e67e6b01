"""Multi-turn conversations (`messages: [{role, content}]`, or ShareGPT's `conversations: [{from, value}]`)
turned into one document text, and that text split back into turns.

The linear form puts each turn under a marker line of its own, ChatML/Zephyr style:

    <|system|>
    You are a helpful travel assistant.
    <|user|>
    Which train goes to Kyoto?
    <|assistant|>
    The Tokaido Shinkansen ...

Why this form: the roles stay visible to the model (it learns who speaks, as chat templates show it later);
a marker alone on its line is unlikely in real text, survives normalization (which only tidies whitespace),
and parses back without ambiguity, so the conversation quality profile reads turns from the filtered text
itself instead of trusting `meta`. A turn whose content holds a marker line is refused at ingest, as it
would break that round trip.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fm_pipeline.curation.conversion import ConversionError

ROLES: tuple[str, ...] = ("system", "user", "assistant")
_SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}
MARKER_RE = re.compile(r"^<\|(system|user|assistant)\|>$", re.MULTILINE)


def marker(role: str) -> str:
    return f"<|{role}|>"


@dataclass(frozen=True)
class Turn:
    role: str
    content: str


def is_conversation_row(row: dict[str, Any]) -> bool:
    """A row without `text` that carries `messages` or ShareGPT's `conversations`."""
    return "text" not in row and ("messages" in row or "conversations" in row)


def parse_turns(row: dict[str, Any]) -> list[Turn]:
    """The turns of a row, or ConversionError naming what is malformed (with the turn's index)."""
    key = "messages" if "messages" in row else "conversations" if "conversations" in row else None
    if key is None:
        raise ConversionError("conversation_no_messages", "row has no 'messages' (or 'conversations') field")
    items = row[key]
    if not isinstance(items, list):
        raise ConversionError("conversation_not_a_list", f"'{key}' is a {type(items).__name__}, not a list")
    if not items:
        raise ConversionError("conversation_no_messages", f"'{key}' is empty")
    turns = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ConversionError("conversation_bad_turn", f"turn {index} is a {type(item).__name__}")
        if "role" in item or "content" in item:
            role, content = item.get("role"), item.get("content")
        else:
            role, content = _SHAREGPT_ROLES.get(item.get("from"), item.get("from")), item.get("value")
        if role not in ROLES:
            raise ConversionError("conversation_unknown_role", f"turn {index} has role {role!r}")
        if not isinstance(content, str):
            raise ConversionError("conversation_bad_turn", f"turn {index} content is {type(content).__name__}")
        content = content.strip()
        if not content:
            raise ConversionError("conversation_empty_turn", f"turn {index} ({role}) is empty")
        if MARKER_RE.search(content):
            raise ConversionError("conversation_marker_in_turn", f"turn {index} holds a role marker line")
        turns.append(Turn(role, content))
    return turns


def linearize(turns: list[Turn]) -> str:
    """The document text: each turn's marker line, then its content."""
    return "\n".join(f"{marker(t.role)}\n{t.content}" for t in turns)


def conversation_meta(turns: list[Turn]) -> dict[str, Any]:
    return {"format": "conversation", "roles": [t.role for t in turns], "turns": len(turns)}


def split_turns(text: str) -> list[Turn] | None:
    """The turns of a linearized text, or None when it does not start with a marker line."""
    found = list(MARKER_RE.finditer(text))
    if not found or found[0].start() != 0:
        return None
    ends = [m.start() for m in found[1:]] + [len(text)]
    return [Turn(m.group(1), text[m.end():end].strip()) for m, end in zip(found, ends, strict=True)]


def strip_markers(text: str) -> str:
    """The turns' content alone, for language ID (the English role names would count as English)."""
    return MARKER_RE.sub("", text)
