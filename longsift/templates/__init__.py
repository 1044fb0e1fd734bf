"""Chat/prompt templates shared by training and generation; the one used in training is saved with the model.

    template = get_template("paper", tokenizer)
    template.prompt(Conversation.from_prompt(eval_prompt))       # text the model continues
    template.training_text(Conversation.from_example(example))    # text + assistant character spans
    save_template(template, model_dir); load_template(model_dir, tokenizer)

A new template is one small module with a `Template` subclass plus one line below.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from longsift.errors import ConfigError
from longsift.outputs import write_text
from longsift.registry import Registry
from longsift.templates.base import Conversation, Rendered, Template

TEMPLATE_FILE = "longsift_template.json"

TEMPLATES: Registry[type[Template]] = Registry("template")
TEMPLATES.register("alpaca", "longsift.templates.alpaca:AlpacaTemplate")
TEMPLATES.register("vicuna", "longsift.templates.vicuna:VicunaTemplate")
TEMPLATES.register("paper", "longsift.templates.paper:PaperTemplate")
TEMPLATES.register("paper-generation", "longsift.templates.alpaca:PaperGenerationTemplate")
TEMPLATES.register("chat", "longsift.templates.chat:ChatTemplate")


def get_template(name: str, tokenizer: Any, system: str | None = None) -> Template:
    """The template `name` bound to `tokenizer` (its EOS token; for `chat`, its Jinja template)."""
    return TEMPLATES.get(name).for_tokenizer(tokenizer, system)


def save_template(template: Template, model_dir: str | Path) -> Path:
    path = Path(model_dir) / TEMPLATE_FILE
    write_text(path, json.dumps(template.to_dict(), indent=2) + "\n")
    return path


def saved_template_name(model_dir: str | Path) -> str | None:
    path = Path(model_dir) / TEMPLATE_FILE
    return json.loads(path.read_text(encoding="utf-8"))["name"] if path.is_file() else None


def load_template(model_dir: str | Path, tokenizer: Any, override: str | None = None) -> Template:
    """The template saved with the model; `override` picks another. Without either, the tokenizer's chat template."""
    path = Path(model_dir) / TEMPLATE_FILE
    if override:
        return get_template(override, tokenizer)
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        cls = TEMPLATES.get(data["name"])
        if data["name"] == "chat":
            return cls.for_tokenizer(tokenizer, data.get("system"))
        return cls(data["eos_token"], data.get("system"))
    if getattr(tokenizer, "chat_template", None):
        return get_template("chat", tokenizer)
    raise ConfigError(
        f"{model_dir} has no {TEMPLATE_FILE} (it was not trained by longsift) and its tokenizer has no chat "
        f"template: pass --template ({', '.join(TEMPLATES.names())})"
    )


__all__ = [
    "TEMPLATES", "TEMPLATE_FILE", "Conversation", "Rendered", "Template", "get_template", "load_template",
    "save_template", "saved_template_name",
]  # fmt: skip
