"""FastChat `vicuna_v1.1`: "SYSTEM USER: question ASSISTANT: answer</s>USER: ..." (separator style ADD_COLON_TWO).

FastChat writes the literal "</s>" after each answer; here it is the tokenizer's own EOS token, which is "</s>" for
Llama-2 and Mistral and the right stop token for every other model.
"""

from __future__ import annotations

from longsift.templates.base import Conversation, Rendered, SpanBuilder, Template, system_text

VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)


class VicunaTemplate(Template):
    name = "vicuna"
    description = "FastChat vicuna_v1.1 (USER: ... ASSISTANT: ...</s>)"
    roles = {"user": "USER", "assistant": "ASSISTANT"}

    def default_system(self) -> str:
        return VICUNA_SYSTEM

    def user_text(self, conversation: Conversation, index: int, first_user: bool) -> str:
        return conversation.messages[index].content

    def render(self, conversation: Conversation, add_generation_prompt: bool) -> Rendered:
        out = SpanBuilder()
        out.add(system_text(conversation.messages, self.system) + " ")
        first_user = True
        for i, message in enumerate(conversation.messages):
            if message.role == "user":
                out.add(f"USER: {self.user_text(conversation, i, first_user)} ")
                first_user = False
            elif message.role == "assistant":
                out.add("ASSISTANT: ")
                out.add_assistant(message.content + self.eos_token)
        if add_generation_prompt:
            out.add("ASSISTANT:")
        return out.build()
