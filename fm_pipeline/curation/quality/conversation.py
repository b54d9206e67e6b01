"""Conversation quality rules: the turn structure of a linearized dialogue (`curation.conversations`).

Prose rules misjudge dialogue (short lines, few sentences, repeated greetings), so conversations get rules
of their own, in the spirit of the chat-data cleaning of OpenAssistant and of UltraChat's filters: enough
turns, user and assistant taking turns, no empty or parroting assistant, not a loop of the same turn, and
turns of sane length. Thresholds are fields, as in the other families.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from fm_pipeline.curation.conversations import split_turns
from fm_pipeline.curation.quality.rule import Rule
from fm_pipeline.curation.quality.view import TextView


@dataclass(frozen=True)
class ConversationQuality(Rule):
    """Rules, in order (the reason is `conversation:<rule>`):

    - `not_linearized`: the text does not start with a role marker line (not a conversation at all);
    - `too_few_turns`: fewer than `min_turns` user and assistant turns (system turns do not count);
    - `alternation`: system turns only at the start, then user and assistant strictly in turn, user first;
    - `empty_assistant_turn`: an assistant turn left empty (after normalization);
    - `identical_assistant_turns`: several assistant turns, all the same text (a canned reply);
    - `repeated_turns`: more than `max_repeated_turn_frac` of user/assistant turns repeat an earlier turn;
    - `turn_too_long`: a turn longer than `max_turn_chars` characters (a pasted dump, not a dialogue);
    - `trivial_assistant`: no assistant turn reaches `min_assistant_chars` characters ("ok", "yes").
    """

    name: ClassVar[str] = "conversation"
    min_turns: int = 2
    max_repeated_turn_frac: float = 0.3
    max_turn_chars: int = 8000
    min_assistant_chars: int = 12

    def check(self, view: TextView) -> str | None:
        turns = split_turns(view.text)
        if turns is None:
            return self._reason("not_linearized")
        start = 0
        while start < len(turns) and turns[start].role == "system":
            start += 1
        dialogue = turns[start:]
        if len(dialogue) < self.min_turns:
            return self._reason("too_few_turns")
        expected = ("user", "assistant")
        if any(t.role != expected[i % 2] for i, t in enumerate(dialogue)):
            return self._reason("alternation")
        replies = [t.content for t in dialogue if t.role == "assistant"]
        if not all(replies):
            return self._reason("empty_assistant_turn")
        if len(replies) > 1 and len(set(replies)) == 1:
            return self._reason("identical_assistant_turns")
        contents = [t.content for t in dialogue]
        if len(contents) - len(set(contents)) > self.max_repeated_turn_frac * len(contents):
            return self._reason("repeated_turns")
        if any(len(t.content) > self.max_turn_chars for t in turns):
            return self._reason("turn_too_long")
        if max(map(len, replies)) < self.min_assistant_chars:
            return self._reason("trivial_assistant")
        return None
