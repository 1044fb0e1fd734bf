"""The options of `generate`, declared once: `longsift generate`'s flags and the recipe step's keys (see
`longsift.options`). Old spellings: `--batch-size` is `--prompts-per-batch`, `--limit` is `--k`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from longsift.options import Options, option


class GenerateOptions(Options):
    eval_set: str = option(
        "pairwise", "pairwise, koala, lima, sinstruct, vicuna, wizardlm, alpacaeval, mtbench (comma-separated), or a "
        "file.", cli=False,
    )  # fmt: skip
    max_new_tokens: int = option(512, "Maximum new tokens per answer.", ge=1)
    prompts_per_batch: int = option(16, "Prompts per batch.", deprecated=("--batch-size",), ge=1)
    batch_tokens: int | None = option(None, "Cap on prompts x padded length per batch.")
    template: str | None = option(None, "Override the template saved with the model.")
    backend: str = option("transformers", "transformers or vllm.")
    k: int | None = option(None, "Only the first k prompts of each eval set.", deprecated=("--limit",), ge=0)
    model_name: str | None = option(None, "Name recorded in the outputs (default: the folder name).", recipe=False)
    temperature: float = option(0.0, "0 = greedy.", ge=0)
    top_p: float = option(1.0, "Nucleus sampling (with temperature > 0).")
    seed: int = option(0, "Sampling seed.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = option("auto", "auto, float32, bfloat16, float16.")
    trust_remote_code: bool = option(False, "Run the model repo's own code.", flags=("--trust-remote-code",))
    compat: str | None = option(None, "paper: the paper's generation prompt (CRLF Alpaca, LIMA as a list).")
    data_dir: Path | None = option(None, "Data folder (default: $LONGSIFT_DATA or ../shared/data).", recipe=False)
    alpacaeval: Path | None = option(None, "Also write AlpacaEval model_outputs.json here.", recipe=False)
    mtbench: Path | None = option(None, "Also write a FastChat MT-Bench answer file here.", recipe=False)
