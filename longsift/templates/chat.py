"""The tokenizer's own chat template (Jinja, `tokenizer.apply_chat_template`).

Assistant spans are found by rendering the conversation up to each assistant turn with the generation prompt and
through that turn without it: the difference is what the assistant writes, end-of-turn token included. The stop token
is the special token the template puts after an answer (e.g. <|im_end|>, <|eot_id|>), else the tokenizer's EOS.
"""

from __future__ import annotations

from typing import Any

from longsift.errors import ConfigError
from longsift.templates.base import Conversation, Rendered, Template


class ChatTemplate(Template):
    name = "chat"
    description = "the tokenizer's own chat template"
    add_special_tokens = False  # chat templates write BOS themselves, as apply_chat_template(tokenize=True) assumes

    def __init__(self, tokenizer: Any, system: str | None = None) -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError(
                "template 'chat' needs a tokenizer with a chat template; this one has none "
                "(use --template alpaca, vicuna or paper)"
            )
        self.tokenizer = tokenizer
        super().__init__(tokenizer.eos_token or "", system)
        self.eos_token = self._end_of_turn_token()

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, system: str | None = None) -> Template:
        return cls(tokenizer, system)

    def _apply(self, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
        return str(text)

    def _dicts(self, conversation: Conversation) -> list[dict[str, str]]:
        messages = [m.to_dict() for m in conversation.messages]
        if self.system and not any(m["role"] == "system" for m in messages):
            messages.insert(0, {"role": "system", "content": self.system})
        return messages

    def render(self, conversation: Conversation, add_generation_prompt: bool) -> Rendered:
        messages = self._dicts(conversation)
        text = self._apply(messages, add_generation_prompt)
        spans = []
        for k, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            before = self._apply(messages[:k], add_generation_prompt=True)
            through = self._apply(messages[: k + 1], add_generation_prompt=False)
            if not (through.startswith(before) and text.startswith(through)):
                raise ConfigError(
                    "the tokenizer's chat template renders a conversation's prefix differently from the whole "
                    "conversation, so assistant turns cannot be located; use --template alpaca, vicuna or paper"
                )
            spans.append(self._through_end_of_turn(through, len(before)))
        return Rendered(text, tuple(spans))

    def _through_end_of_turn(self, through: str, start: int) -> tuple[int, int]:
        """The span ends with the end-of-turn token; the whitespace some templates write after it is not trained."""
        end = through.rfind(self.eos_token, start)
        return (start, end + len(self.eos_token)) if end >= 0 else (start, len(through))

    def _end_of_turn_token(self) -> str:
        probe = "longsift-probe-answer"
        messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": probe}]
        text = self._apply(messages, add_generation_prompt=False)
        tail = text[text.rindex(probe) + len(probe) :]
        specials = sorted(
            {str(t) for t in self.tokenizer.all_special_tokens} | set(self.tokenizer.get_added_vocab()),
            key=lambda token: (tail.find(token) if token in tail else len(tail) + 1, -len(token)),
        )
        found = [token for token in specials if token and token in tail]
        return found[0] if found else self.eos_token

    def stop_tokens(self) -> list[str]:
        return list(dict.fromkeys([self.eos_token, self.tokenizer.eos_token]))
