"""Generation with the tiny model trained in this session: every built-in eval set, batching, resume, exports."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from longsift.errors import MissingDependencyError
from longsift.evalsets import EXPECTED_COUNTS, load_eval_set
from longsift.generate import SamplingOptions, generate, generate_prompts
from longsift.generations import append_generation, read_generations
from longsift.records import Generation
from longsift.templates import Conversation

ALL_SETS = "pairwise,alpacaeval,mtbench"


@pytest.fixture(scope="module")
def engine(tiny_trained):
    from longsift.generate import GenerationEngine

    return GenerationEngine.open("transformers", tiny_trained.output)


def _check_all_sets(generations: list[Generation], per_set: dict[str, int], data_dir: Path, engine) -> None:
    prompts = [p for p in load_eval_set(ALL_SETS, data_dir)]
    expected_ids = [p.id for p in prompts if int(p.id.rsplit("_", 1)[1]) < per_set.get(p.eval_set, 10**6)
                    or p.eval_set == "mtbench"]  # fmt: skip
    by_set: dict[str, int] = {}
    for g in generations:
        by_set[g.eval_set] = by_set.get(g.eval_set, 0) + 1
    assert by_set == per_set
    assert [g.prompt_id for g in generations if g.eval_set != "mtbench"] == [
        i for i in expected_ids if not i.startswith("mtbench")
    ]  # eval-set order restored after length-sorted batching
    for g in generations:
        info = g.metadata["generation"]
        assert len(g.outputs) == len(g.turns) and info["template"] == "paper" and g.model == "model"
        assert all(n <= 16 for n in info["new_tokens"])
    for g in (g for g in generations if g.eval_set == "mtbench"):
        # the second turn was asked after the model's own first answer
        second = engine.template.prompt(Conversation.from_prompt(_prompt(prompts, g.prompt_id), [g.outputs[0]]))
        ids = engine.tokenizer(second)["input_ids"]
        assert g.metadata["generation"]["prompt_tokens"][1] == min(len(ids), engine.runner.max_context - 16)


def _prompt(prompts, prompt_id):
    return next(p for p in prompts if p.id == prompt_id)


def test_generates_on_every_built_in_eval_set(tiny_trained, data_dir: Path, tmp_path: Path, engine):
    """All 1,030 pairwise prompts, AlpacaEval's 805 and MT-Bench's 80 x 2 turns, reloaded from disk (~30 s on CPU)."""
    out = tmp_path / "all.jsonl"
    generations = generate(tiny_trained.output, ALL_SETS, out, max_new_tokens=16, batch_size=64, batch_tokens=16384,
                           data_dir=data_dir)  # fmt: skip
    assert len(generations) == 1030 + 805 + 80
    _check_all_sets(generations, dict(EXPECTED_COUNTS), data_dir, engine)
    assert read_generations(out) == generations and not Path(f"{out}.partial").exists()
    manifest = json.loads((tmp_path / "all.manifest.json").read_text())["summary"]
    assert manifest["completions"] == 1030 + 805 + 160 and manifest["template"]["name"] == "paper"


def test_batched_greedy_equals_one_prompt_at_a_time(engine, data_dir: Path):
    prompts = load_eval_set("vicuna,koala", data_dir)[70:86]  # mixed lengths, so left padding matters
    batched = generate_prompts(engine, prompts, "m", SamplingOptions(max_new_tokens=12, batch_size=16))
    single = generate_prompts(engine, prompts, "m", SamplingOptions(max_new_tokens=12, batch_size=1))
    assert [g.outputs for g in batched] == [g.outputs for g in single]


def test_an_interrupted_run_resumes_from_its_partial_file(engine, data_dir: Path, tmp_path: Path):
    prompts = load_eval_set("vicuna", data_dir)[:6]
    out = tmp_path / "v.jsonl"
    settings = {"template": "paper", "backend": "transformers", "max_new_tokens": 8, "temperature": 0.0, "seed": 0}
    kept = Generation(prompts[2].id, "vicuna", "m", prompts[2].turns, ("from the first run",), {"generation": settings})
    other = {**settings, "max_new_tokens": 512}  # a run with other options is not reused
    append_generation(Generation(prompts[3].id, "vicuna", "m", prompts[3].turns, ("stale",), {"generation": other}),
                      Path(f"{out}.partial"))  # fmt: skip
    append_generation(kept, Path(f"{out}.partial"))
    done = []
    generations = generate_prompts(engine, prompts, "m", SamplingOptions(max_new_tokens=8, batch_size=4), out,
                                   progress=lambda n, total: done.append((n, total)))  # fmt: skip
    assert generations[3].output != "stale"
    assert generations[2].output == "from the first run" and [g.prompt_id for g in generations] == [
        p.id for p in prompts
    ]
    assert done[-1] == (6, 6) and len(done) == 5  # only the 5 missing prompts were generated


def test_long_prompts_keep_their_end_and_are_marked(engine):
    encoded = engine.runner.encode(["word " * 20000, "hello"], engine.template.add_special_tokens, room_for=16)
    (ids, truncated), (short_ids, short_truncated) = encoded
    assert truncated and len(ids) == engine.runner.max_context - 16 and not short_truncated


def test_cli_generate_writes_alpacaeval_and_mtbench_files(cli, tiny_trained, data_dir: Path, tmp_path: Path):
    out, alpaca, mt = tmp_path / "g.jsonl", tmp_path / "model_outputs.json", tmp_path / "tiny.jsonl"
    result = cli("generate", str(tiny_trained.output), "alpacaeval,mtbench", "-o", str(out), "--k", "3",
                 "--max-new-tokens", "8", "--data-dir", str(data_dir), "--alpacaeval", str(alpaca), "--mtbench",
                 str(mt), "--model-name", "tiny", env={"OMP_NUM_THREADS": "1"})  # fmt: skip
    assert "wrote 6 generations" in result.stderr
    outputs = json.loads(alpaca.read_text())
    assert [o["generator"] for o in outputs] == ["tiny"] * 3 and outputs[0]["dataset"] == "helpful_base"
    answers = [json.loads(line) for line in mt.read_text().splitlines()]
    assert [a["question_id"] for a in answers] == [81, 82, 83] and len(answers[0]["choices"][0]["turns"]) == 2


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm installed")
def test_vllm_backend_says_how_to_install_it(tiny_trained, data_dir: Path, cli, tmp_path: Path):
    with pytest.raises(MissingDependencyError, match="pip install"):
        generate(tiny_trained.output, "vicuna", backend="vllm", data_dir=data_dir)
    result = cli("generate", str(tiny_trained.output), "vicuna", "-o", str(tmp_path / "x.jsonl"), "--backend", "vllm",
                 "--data-dir", str(data_dir), check=False)  # fmt: skip
    assert result.returncode == 2 and "vllm" in result.stderr and "Traceback" not in result.stderr
