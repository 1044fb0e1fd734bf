"""The paper's training layout: Vicuna v1.1 around the Alpaca preamble flattened onto one line.

Its FastChat fork (training/fastchat/train/train.py) renders every example with `get_conversation_template("vicuna")`,
and the released data files already hold the preamble inside the human turn:
"A chat between ... questions. USER: Below is an instruction ... ### Instruction: {instruction} ASSISTANT: {answer}</s>"
"""

from __future__ import annotations

from longsift.formats.sharegpt import paper_prompt
from longsift.templates.base import Conversation
from longsift.templates.vicuna import VicunaTemplate


class PaperTemplate(VicunaTemplate):
    name = "paper"
    description = "the paper's training layout: Vicuna v1.1 system + one-line Alpaca preamble in the user turn"

    def user_text(self, conversation: Conversation, index: int, first_user: bool) -> str:
        content = conversation.messages[index].content
        if not first_user:
            return content
        if conversation.instruction is not None:
            return paper_prompt(conversation.instruction, conversation.input)
        return paper_prompt(content, "")
