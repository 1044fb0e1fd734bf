"""Stanford Alpaca: the preamble, `### Instruction:` (+ `### Input:`), `### Response:`, then the answer and EOS.

The layout is Stanford Alpaca's train.py byte for byte: the prompt ends with "### Response:" and the answer follows
with no separator. Later user turns (Alpaca itself has none) repeat the Instruction/Response blocks. A system prompt
(the conversation's, else the template's) replaces the preamble.
"""

from __future__ import annotations

from longsift.formats.alpaca import PREAMBLE, PREAMBLE_WITH_INPUT
from longsift.templates.base import Conversation, Rendered, SpanBuilder, Template, first_user_index


class AlpacaTemplate(Template):
    name = "alpaca"
    description = "Stanford Alpaca prompt (preamble, ### Instruction/### Input/### Response)"
    newline = "\n"
    #: the separator before the input text; the paper's generation script used a bare "\n" here
    input_newline = "\n"

    def render(self, conversation: Conversation, add_generation_prompt: bool) -> Rendered:
        nl = self.newline
        messages = conversation.messages
        first = first_user_index(messages)
        system = next((m.content for m in messages if m.role == "system"), self.system or None)
        out = SpanBuilder()
        for i, message in enumerate(messages):
            if message.role == "user" and i == first:
                instruction = conversation.instruction if conversation.instruction is not None else message.content
                input_text = conversation.input if conversation.instruction is not None else ""
                preamble = system if system is not None else (PREAMBLE_WITH_INPUT if input_text else PREAMBLE)
                out.add(f"{preamble}{nl}{nl}### Instruction:{nl}{instruction}")
                if input_text:
                    out.add(f"{nl}{nl}### Input:{self.input_newline}{input_text}")
                out.add(f"{nl}{nl}### Response:")
            elif message.role == "user":
                out.add(f"{nl}{nl}### Instruction:{nl}{message.content}{nl}{nl}### Response:")
            elif message.role == "assistant":
                out.add_assistant(message.content + self.eos_token)
        return out.build()


class PaperGenerationTemplate(AlpacaTemplate):
    """The prompt of the paper's generation scripts (generate_test.py): Alpaca with "\\r\\n" line breaks.

    It differs from the layout the paper trained on (`paper`); it is here to reproduce the released answers,
    not as a recommendation.
    """

    name = "paper-generation"
    description = "the paper's generation prompt: Alpaca with \\r\\n (differs from its training layout)"
    newline = "\r\n"
    input_newline = "\n"
