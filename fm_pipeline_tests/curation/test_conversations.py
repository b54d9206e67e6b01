"""Conversations: linearization, malformed rows quarantined with their kind, the conversation quality profile,
and the sample `conversations` source end to end through ingest and filter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fm_pipeline.curation.conversations import Turn, linearize, parse_turns, split_turns, strip_markers
from fm_pipeline.curation.conversion import ConversionError
from fm_pipeline.curation.filter_stage import FilterConfig, filter_source
from fm_pipeline.curation.ingest import ingest_source
from fm_pipeline.curation.quality.conversation import ConversationQuality
from fm_pipeline.curation.readers import ReadContext, read_file
from fm_pipeline.lake.documents import Document
from fm_pipeline.lake.parquet_io import iter_rows, list_shards
from fm_pipeline.lake.paths import raw_corpus_root

SAMPLE = raw_corpus_root() / "conversations"


def test_messages_and_sharegpt_rows_linearize_with_role_markers():
    row = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": " Hi!\n"},
                        {"role": "assistant", "content": "Hello.\n\nHow can I help?"}]}
    text = linearize(parse_turns(row))
    assert text == "<|system|>\nBe brief.\n<|user|>\nHi!\n<|assistant|>\nHello.\n\nHow can I help?"
    sharegpt = {"conversations": [{"from": "human", "value": "Hi!"}, {"from": "gpt", "value": "Hello."}]}
    assert linearize(parse_turns(sharegpt)) == "<|user|>\nHi!\n<|assistant|>\nHello."
    assert split_turns(text) == [Turn("system", "Be brief."), Turn("user", "Hi!"),
                                 Turn("assistant", "Hello.\n\nHow can I help?")]
    assert strip_markers(text).split() == ["Be", "brief.", "Hi!", "Hello.", "How", "can", "I", "help?"]
    assert split_turns("Plain prose, no markers.") is None


@pytest.mark.parametrize(("row", "kind", "error"), [
    ({"text": "hi"}, "conversation_no_messages", "row has no 'messages' (or 'conversations') field"),
    ({"messages": []}, "conversation_no_messages", "'messages' is empty"),
    ({"messages": "user: hi"}, "conversation_not_a_list", "'messages' is a str, not a list"),
    ({"messages": [{"role": "bot", "content": "x"}]}, "conversation_unknown_role", "turn 0 has role 'bot'"),
    ({"messages": [{"role": "user", "content": " \n"}]}, "conversation_empty_turn", "turn 0 (user) is empty"),
    ({"messages": [{"role": "user", "content": 3}]}, "conversation_bad_turn", "turn 0 content is int"),
    ({"messages": ["hello"]}, "conversation_bad_turn", "turn 0 is a str"),
    ({"messages": [{"role": "user", "content": "a\n<|assistant|>\nb"}]}, "conversation_marker_in_turn",
     "turn 0 holds a role marker line"),
])
def test_malformed_conversations_raise_their_kind(row, kind, error):
    with pytest.raises(ConversionError) as caught:
        parse_turns(row)
    assert (caught.value.kind, str(caught.value)) == (kind, error)


def test_reader_quarantines_with_file_and_line(tmp_path: Path):
    path = tmp_path / "c.jsonl"
    rows = [{"id": "ok", "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey"}],
             "meta": {"origin": "test"}},
            {"id": "bad", "messages": [{"role": "robot", "content": "beep"}]}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    good, bad = read_file(path, ReadContext("conversations", "c.jsonl"))
    assert isinstance(good, Document) and good.text == "<|user|>\nHi\n<|assistant|>\nHey"
    assert good.meta == {"origin": "test", "format": "conversation", "roles": ["user", "assistant"], "turns": 2}
    assert (bad.file, bad.line, bad.kind, bad.error) == ("c.jsonl", 2, "conversation_unknown_role",
                                                         "turn 0 has role 'robot'")


def _conv(*turns: tuple[str, str]) -> str:
    return linearize([Turn(r, c) for r, c in turns])


REPLY = "A full answer to the question."


@pytest.mark.parametrize(("text", "reason"), [
    ("Just prose.", "conversation:not_linearized"),
    (_conv(("system", "Be kind."), ("user", "Hello there, anyone?")), "conversation:too_few_turns"),
    (_conv(("assistant", REPLY), ("user", "Why?")), "conversation:alternation"),
    (_conv(("user", "Q1?"), ("assistant", REPLY), ("system", "Now be rude."), ("assistant", REPLY + "!")),
     "conversation:alternation"),
    (_conv(("user", "Q1?"), ("assistant", REPLY), ("user", "Q2?"), ("assistant", REPLY)),
     "conversation:identical_assistant_turns"),
    (_conv(("user", "Again?"), ("assistant", REPLY), ("user", "Again?"), ("assistant", REPLY + " More."),
           ("user", "Again?"), ("assistant", REPLY + " Even more.")), "conversation:repeated_turns"),
    (_conv(("user", "Log:"), ("assistant", "x" * 8001)), "conversation:turn_too_long"),
    (_conv(("user", "Can you book the room?"), ("assistant", "ok"), ("user", "And the projector?"),
           ("assistant", "yes, sure")), "conversation:trivial_assistant"),
    (_conv(("system", "Be kind."), ("user", "Q1?"), ("assistant", REPLY)), None),
])
def test_conversation_profile_names_each_rejection(text, reason):
    assert ConversationQuality().filter(text, "en") == reason


def test_sample_conversations_ingest_and_filter_as_planted(tmp_path: Path):
    """The planted rows of `chats-planted.jsonl` (raw/PLANTED_SOURCES.md) leave with their kind or reason; every
    other dialogue is kept in its language."""
    raw = ingest_source("conversations", SAMPLE, tmp_path / "raw")
    quarantined = {r["line"]: r["kind"] for r in iter_rows(list_shards(tmp_path / "raw" / "quarantine"))}
    assert quarantined == {1: "conversation_no_messages", 2: "conversation_not_a_list",
                           3: "conversation_unknown_role", 4: "conversation_empty_turn", 5: "conversation_bad_turn"}
    assert (raw.documents_in, raw.kept) == (25, 20)
    filter_source("conversations", list_shards(tmp_path / "raw"), tmp_path / "f", FilterConfig(processes=1))
    rejected = {r["id"]: r["reason"] for r in iter_rows(list_shards(tmp_path / "f" / "rejected"))}
    assert rejected == {
        "conv-single-turn": "conversation:too_few_turns", "conv-no-alternation": "conversation:alternation",
        "conv-canned-replies": "conversation:identical_assistant_turns",
        "conv-looping-user": "conversation:repeated_turns", "conv-trivial-assistant": "conversation:trivial_assistant",
    }
    kept = {r["id"]: r["lang"] for r in iter_rows(list_shards(tmp_path / "f" / "kept"))}
    assert set(kept.values()) == {"en", "es", "fr", "de", "pt", "ja", "zh", "ru", "hi", "ko", "ar"}
    assert kept["conv-sharegpt-de-mietvertrag"] == "de" and len(kept) == 15
