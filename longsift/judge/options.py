"""The options of the LLM judges, declared once: judge_pairwise() and judge_mtbench() take them, the CLI commands
`judge pairwise` and `judge mtbench` are built from them, the recipe steps `judge` and `mtbench` are validated by
them (tests/test_one_declaration.py checks all three agree)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import field_validator

from longsift.errors import ConfigError
from longsift.judge import alpacaeval, openllm
from longsift.options import Options, option

RESAMPLE_HELP = "New samples (another seed, some temperature) for a reply that does not parse; 0: none."
MAX_TOKENS_HELP = "Override the template's max tokens per judgment."


class JudgeCommon(Options):
    resample: int = option(0, RESAMPLE_HELP)
    max_tokens: int | None = option(None, MAX_TOKENS_HELP)

    @field_validator("resample")
    @classmethod
    def _not_negative(cls, value: int) -> int:
        if value < 0:
            raise ConfigError(f"--resample must be 0 or more, got {value}")
        return value


class PairwiseOptions(JudgeCommon):
    template: str = option("paper", "paper, paper-palm2, fastchat-pair, alpacaeval, or a .toml file.")
    parse: str | None = option(None, "strict (default: longsift's reader, unreadable replies fail) or paper (the "
                               "paper's parse_score + int() comparison: unreadable replies are ties, as its "
                               "result_graph.py counted).")  # fmt: skip
    compat: str | None = option(None, "paper: every quirk of the paper's judge scripts (paper reading, LIMA "
                                "question as a Python list); see the README, 'Reproducing the paper exactly'.",
                                )  # fmt: skip


class MTBenchOptions(JudgeCommon):
    questions: Path | None = option(None, "MT-Bench question.jsonl.")
    reference_answers: Path | None = option(None, "FastChat reference answers.")
    judge_prompts: Path | None = option(None, "FastChat judge_prompts.jsonl.")
    reference: str = option("gpt-4", "gpt-4 (FastChat's) or inline (question file's).")
    model_name: str | None = option(None, "Name of the graded model (default: the file's).")

    @field_validator("reference")
    @classmethod
    def _known_reference(cls, value: str) -> str:
        if value not in ("gpt-4", "inline"):
            raise ConfigError(f"--reference must be gpt-4 or inline, got {value!r}")
        return value


class PairwiseCommand(PairwiseOptions):
    output: Path = option(..., "Output directory: judgments.jsonl, summary.json.", flags=("-o", "--output"),
                          recipe=False)  # fmt: skip


class MTBenchCommand(MTBenchOptions):
    data_dir: Path | None = option(None, "Holds mt_bench/ (default $LONGSIFT_DATA).", recipe=False)
    output: Path = option(..., "Output directory: model_judgment/, scores.json.", flags=("-o", "--output"),
                          recipe=False)  # fmt: skip


class PairwiseStep(PairwiseOptions):
    a: str = option(..., "Generation file of model A (a path or a stage's output).", cli=False)
    b: str = option(..., "Generation file of model B.", cli=False)
    llm: dict[str, Any] | None = option(None, "The judge's LLM options (longsift.llm.settings.LLMOptions).", cli=False)


class MTBenchStep(MTBenchOptions):
    answers: str = option(..., "The graded model's answers (FastChat JSONL or a generation file).", cli=False)
    llm: dict[str, Any] | None = option(None, "The judge's LLM options (longsift.llm.settings.LLMOptions).", cli=False)


# ---- AlpacaEval -----------------------------------------------------------------------------------------------


class AlpacaEvalExportOptions(Options):
    output: Path = option(..., "model_outputs.json to write.", flags=("-o", "--output"))
    model_name: str | None = option(None, "Generator name (default: the records' model name).",
                                    deprecated=("--generator",))  # fmt: skip


class AlpacaEvalScoreOptions(Options):
    difficulty: Path | None = option(None, "AlpacaEval's df_gamed.csv (instruction difficulties) for LC.")
    model_outputs: Path | None = option(None, "The model_outputs.json annotated: avg_length over it, as the "
                                        "leaderboard.")  # fmt: skip


class AlpacaEvalScoreCommand(AlpacaEvalScoreOptions):
    hub: bool = option(True, "Look for df_gamed.csv in the Hugging Face cache / hub when no path is given.",
                       recipe=False)  # fmt: skip
    as_json: bool = option(False, "Print one JSON object (percent units, as the leaderboard).", flags=("--json",),
                        recipe=False)  # fmt: skip


class AlpacaEvalRunOptions(Options):
    output: Path = option(..., "Output directory: annotations.json, score.json.", flags=("-o", "--output"),
                          deprecated=("--output-dir",))  # fmt: skip
    annotators_config: str = option(alpacaeval.DEFAULT_ANNOTATOR, "alpaca_eval annotator config.")
    reference_outputs: Path | None = option(None, "Reference outputs (default: alpaca_eval's).")
    k: int | None = option(None, "Annotate only this many instructions (a test run).", flags=("--k",),
                           deprecated=("--max-instances",))  # fmt: skip
    difficulty: Path | None = option(None, "AlpacaEval's df_gamed.csv for the LC win rate.")


class AlpacaEvalStep(AlpacaEvalScoreOptions):
    annotations: str = option(..., "alpaca_eval annotations.json (or .json.gz), a path or a stage's output.",
                              cli=False)  # fmt: skip
    model_name: str | None = option(None, "The model's name in the run (default: the stage's name).", cli=False,
                                    deprecated=("--model",))  # fmt: skip


# ---- Open LLM Leaderboard ---------------------------------------------------------------------------------------


class OpenLLMOptions(Options):
    tasks: str = option(",".join(openllm.DEFAULT_TASKS), f"Comma-separated, from {', '.join(openllm.TASKS)}, or "
                        f"tasks of your own with --include-path. {openllm.HELLASWAG_NOTE}.")  # fmt: skip
    k: int | None = option(None, "Evaluate only the first K examples of each task (a smoke test).", flags=("--k",),
                           deprecated=("--limit",))  # fmt: skip
    local_batch_size: str = option("1", "lm_eval batch size (an integer or 'auto').", deprecated=("--batch-size",))
    device: str | None = option(None, "Device, e.g. cuda:0 or cpu.")
    model_args: str = option("", "Extra lm_eval model_args, e.g. dtype=bfloat16.")
    seed: int = option(0, "Seed of lm_eval's random, numpy, torch and few-shot sampling.")
    include_path: list[str] = option([], "A folder of lm_eval task YAML files (lm_eval's --include_path; "
                                     "repeatable).")  # fmt: skip
    num_fewshot: int | None = option(None, "Shots for tasks of your own (ours keep the leaderboard's).")
    chat_template: bool = option(False, "Format prompts with the model's chat template (multi-turn shots).")
    log_samples: Path | None = option(None, "Write per-sample logs here, one <task>.jsonl per task.")
    base_url: str | None = option(None, "Evaluate through an OpenAI-compatible /v1/completions endpoint with "
                                  "prompt logprobs (vLLM, `longsift serve`) instead of loading the model here.",
                                  )  # fmt: skip
    model_name: str | None = option(None, "The endpoint's model name (with --base-url).")
    tokenizer: str | None = option(None, "The endpoint model's tokenizer, path or hub id (--base-url).")
    concurrency: int = option(1, "Parallel requests to the endpoint.")
    output: Path | None = option(None, "Write the summary and raw results as JSON (after every task).",
                                 flags=("-o", "--output"))  # fmt: skip
