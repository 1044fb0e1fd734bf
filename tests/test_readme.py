"""The README's commands stay true: set-up commands exist, and every documented flag exists."""

from __future__ import annotations

import re
import shlex

import pytest

from tests.conftest import REPO

README = (REPO / "README.md").read_text()
GROUPS = {"judge", "alpacaeval", "llm"}  # commands whose next word is a sub-command


def test_the_two_setup_commands_are_what_ci_runs() -> None:
    assert "make demo" in README and "make test" in README
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^demo: install$", makefile, re.M) and re.search(r"^test: install$", makefile, re.M)
    ci = (REPO / ".ci" / "run").read_text()
    steps = [line for line in ci.strip().splitlines() if line.startswith("make ")]
    assert steps == ["make test", "make test-ray", "make test-min"]  # README tests, the Ray extra, then the floors
    # the fast suite in TEST_PROCS pytest-xdist processes (default 2); at the floors, its FLOOR_TESTS
    assert re.search(r"^TEST_PROCS \?= 2$", makefile, re.M)
    run = r"python -m pytest -q -n \$\(TEST_PROCS\) -m \"not slow and not ray\""
    assert re.search(rf"^\t\$\(BIN\)/{run}$", makefile, re.M)
    assert re.search(rf"^\t\$\(MIN_BIN\)/{run} \$\(FLOOR_TESTS\)$", makefile, re.M)


def documented_commands() -> list[list[str]]:
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#")[0].split("&&")[0].strip()
            words = shlex.split(line) if line else []
            if "longsift" in words:  # also `accelerate launch ... -m longsift train ...`
                commands.append(words[words.index("longsift") + 1 :])
    return commands


def test_every_documented_flag_exists(cli) -> None:
    commands = documented_commands()
    assert len(commands) >= 15
    helps: dict[tuple[str, ...], str] = {}
    for words in commands:
        name = tuple(words[:2]) if words[0] in GROUPS else tuple(words[:1])
        if name not in helps:
            helps[name] = cli(*name, "--help", env={"COLUMNS": "250"}).stdout
        for flag in (w.split("=")[0] for w in words if w.startswith("--")):
            assert flag in helps[name], f"README uses `longsift {' '.join(name)} {flag}`, which does not exist"


# ---- every README command runs as written (paths aside), or names the test that runs it ---------------------------

RUN, OFFLINE = "run", "offline"  # run here against local files and the local OpenAI-protocol server; Hub ids offline
COVERAGE: list[tuple[str, str]] = [  # the first pattern that matches a command decides
    (r"^select .*--method (kcenter|diverse|dedup-semantic) .*--executor ray", "tests/test_ray_embed.py"),
    (r"^(select|stats|convert) .*(--dry-run|--output-format parquet-shards)", "tests/test_ray_io.py"),
    (r"--executor ray", "tests/test_ray.py"),
    (r"^compare ", "tests/test_compare.py"),
    (r"^run recipes/selection-study", "tests/test_selection_study.py"),
    (r"^select \S+ .*--method (ifd|superfilter)", "tests/test_select_ifd.py"),
    (r"^select \S+ .*--method kcenter", "tests/test_select_kcenter.py"),
    (r"^select \S+ .*(--method (dedup|diverse)|--where|--chain)", "tests/test_select_where.py"),
    (r"^select alpaca_data\.json .*--preset paper", RUN),
    (r"^select (tatsu-lab|WizardLM)/", OFFLINE),
    (r"^select pool\.jsonl .*--method random", RUN),
    (r"^stats ", RUN),
    (r"^refine alpaca-longest-1k\.json ", RUN),
    (r"^score alpaca_data\.json ", RUN),
    (r"^select scored\.jsonl .*--method llm-score", RUN),
    # needs two models' generations (GPU-sized in the README): run on tiny models by these tests
    (r"^judge pairwise ", "tests/test_judge_pairwise.py"),
    (r"^judge mtbench ", "tests/test_mtbench_judge.py"),
    (r"^alpacaeval (export|score) ", "tests/test_alpacaeval.py"),
    (r"^openllm ", "tests/test_openllm.py"),
    (r"^train .*(--model meta-llama|--tiny)", "tests/test_train.py"),
    (r"^generate runs/longest-1k ", "tests/test_generate.py"),
    (r"^run recipes/tiny-cpu\.yaml", "tests/test_tiny_cpu_recipe.py"),
    (r"^run alpaca-longest-1k", "tests/test_recipes_offline.py"),
    (r"^analyze ", "tests/test_analyze_cli.py"),
    (r"^report \S+ \S+ -o", "tests/test_report_headline.py"),
    (r"^report ", "tests/test_report.py"),
]  # fmt: skip
LLM_COMMANDS = {"refine", "score"}


def coverage_of(words: list[str]) -> str:
    line = " ".join(words)
    found = [how for pattern, how in COVERAGE if re.search(pattern, line)]
    assert found, f"README command `longsift {line}` is neither run by test_readme_commands_run nor mapped to a test"
    return found[0]


def test_every_readme_command_is_run_or_checked() -> None:
    for words in documented_commands():
        how = coverage_of(words)
        if how not in (RUN, OFFLINE):
            text = (REPO / how).read_text()
            assert f'"{words[0]}"' in text, f"{how} does not run `longsift {words[0]}`"


def test_side_files_are_asked_of_eval_sets_that_hold_them() -> None:
    """`generate --alpacaeval F` (or `--mtbench F`) over sets without those prompts would write an empty file."""
    for words in documented_commands():
        if words[0] == "generate":
            for flag, name in (("--alpacaeval", "alpacaeval"), ("--mtbench", "mtbench")):
                assert flag not in words or name in words[2].split(","), " ".join(words)


def scripted_reply(request) -> str:
    """Refinement gets a better answer; AlpaGasus rating a score (5 or 3, by the prompt); anything else an echo."""
    text = request.prompt
    if "[Better Answer]" in text:
        return "[Better Answer] A clearer, complete answer. [End]"
    if "score" in text.lower() or "rate" in text.lower():
        return "5" if len(text) % 2 else "3"
    return f"echo: {text[:20]}"


def heavy(words: list[str]) -> bool:
    """Exact NLTK counts and tokenizer loads cost tens of seconds on 2 cores: those commands run under -m slow."""
    return "--preset" in words or "nltk" in words or "--tokenizer" in words


@pytest.mark.parametrize("with_heavy", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_readme_commands_run(with_heavy: bool, tmp_path, data_dir) -> None:
    import gzip
    import json
    from itertools import islice

    from longsift.llm.server import LocalChatServer
    from longsift.tiny import build_tiny_model
    from tests.conftest import run_cli

    with gzip.open(data_dir / "alpaca_subsets" / "alpaca_public_pool.jsonl.gz", "rt") as handle:
        rows = [json.loads(line) for line in islice(handle, 120)]
    (tmp_path / "alpaca_data.json").write_text(json.dumps(rows, indent=4))  # the README's names, in its folder
    (tmp_path / "pool.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    texts = [r["output"] for r in rows[:60]]
    tokenizer = build_tiny_model(tmp_path / "tok", texts, vocab_size=300, seed=0) if with_heavy else None
    offline = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(tmp_path / "hf" / "hub")}
    with LocalChatServer(scripted_reply) as server:
        for words in documented_commands():
            how = coverage_of(words)
            if how not in (RUN, OFFLINE):
                continue
            if how == RUN and heavy(words) and not with_heavy:
                if words[0] == "select":  # what later commands read: the same file, by chars
                    run_cli("select", words[1], "-o", words[words.index("-o") + 1], "--k", "50", cwd=tmp_path)
                continue
            args = [str(tokenizer) if w.startswith("PATH") else w for w in words]
            if words[0] in LLM_COMMANDS:
                args += ["--base-url", server.base_url]
            done = run_cli(*args, cwd=tmp_path, env=offline if how == OFFLINE else None, check=False, timeout=300)
            line = " ".join(words)
            if how == OFFLINE:  # a Hub id with no network: one line, at once, saying what to pass instead
                errors = [e for e in done.stderr.splitlines() if e.startswith("error:")]
                assert done.returncode == 2 and len(errors) == 1 and "Hugging Face" in errors[0], (line, done.stderr)
                assert "Traceback" not in done.stderr
                continue
            assert done.returncode == 0, (line, done.stdout, done.stderr)
            output = tmp_path / args[args.index("-o") + 1]
            if "--dry-run" not in words:
                assert output.exists() and (output.is_dir() or output.stat().st_size > 2), line  # never empty
