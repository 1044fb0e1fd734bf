"""The recipe runner's bookkeeping, with a small step registered like a real one."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import yaml

from longsift.errors import ConfigError
from longsift.pipeline import load_recipe, run_recipe
from longsift.pipeline.runner import INPUT_OPTIONS, STEPS, StageContext
from tests.conftest import REPO


def write_text_step(context: StageContext) -> dict[str, str]:
    """Writes its `text` (plus its input file's text) and counts how often it ran."""
    context.check_options({"text", "input"})
    out = context.run_dir / f"{context.spec.name}.txt"
    prefix = Path(context.options["input"]).read_text() if "input" in context.options else ""
    out.write_text(prefix + context.require("text"))
    counter = context.run_dir / f"{context.spec.name}.runs"
    counter.write_text(str(int(counter.read_text()) + 1 if counter.exists() else 1))
    return {"output": str(out)}


@pytest.fixture(autouse=True)
def toy_step(restore_registries: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The toy step, registered for each test and gone after it (conftest's restore_registries)."""
    STEPS.register("write-text", write_text_step)
    monkeypatch.setitem(INPUT_OPTIONS, "write-text", ("input",))  # what the step reads: a change reruns it


def recipe_file(tmp_path: Path, first_text: str = "a") -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "toy",
                "run_dir": str(tmp_path / "run"),
                "stages": [
                    {"name": "first", "uses": "write-text", "with": {"text": first_text}},
                    {"name": "second", "uses": "write-text", "with": {"text": "b", "input": "${first}"}},
                ],
            }
        )
    )
    return path


def runs(tmp_path: Path, stage: str) -> int:
    return int((tmp_path / "run" / f"{stage}.runs").read_text())


def test_rerun_skips_done_stages_and_reruns_what_changed(tmp_path: Path) -> None:
    result = run_recipe(load_recipe(recipe_file(tmp_path)))
    assert result.ran == ["first", "second"]
    assert (tmp_path / "run" / "second.txt").read_text() == "ab"
    again = run_recipe(load_recipe(recipe_file(tmp_path)))
    assert again.skipped == ["first", "second"] and runs(tmp_path, "first") == 1
    changed = run_recipe(load_recipe(recipe_file(tmp_path, first_text="z")))
    assert changed.ran == ["first", "second"]  # second's input file changed, so it reruns too
    assert (tmp_path / "run" / "second.txt").read_text() == "zb"
    forced = run_recipe(load_recipe(recipe_file(tmp_path, first_text="z")), force=["second"])
    assert forced.skipped == ["first"] and forced.ran == ["second"]


def test_a_stage_that_died_has_no_manifest_and_runs_again(tmp_path: Path) -> None:
    run_recipe(load_recipe(recipe_file(tmp_path)))
    (tmp_path / "run" / ".stages" / "second" / "manifest.json").unlink()  # as if killed before it finished
    result = run_recipe(load_recipe(recipe_file(tmp_path)))
    assert result.skipped == ["first"] and result.ran == ["second"]


def test_overrides_unknown_keys_and_references_are_checked(tmp_path: Path) -> None:
    recipe = load_recipe(recipe_file(tmp_path), ["stages.first.with.text=q", "seed=7"])
    assert recipe.stage("first").options["text"] == "q" and recipe.seed == 7
    with pytest.raises(ConfigError, match="extra_forbidden|Extra inputs"):
        load_recipe(recipe_file(tmp_path), ["epochs=3"])
    with pytest.raises(ConfigError, match="no stage named"):
        load_recipe(recipe_file(tmp_path), ["stages.nope.with.text=q"])
    bad = tmp_path / "bad.yaml"

    def one_stage(options: dict[str, str]) -> Path:
        stage = {"name": "s", "uses": "write-text", "with": options}
        bad.write_text(yaml.safe_dump({"name": "x", "run_dir": str(tmp_path / "r"), "stages": [stage]}))
        return bad

    with pytest.raises(ConfigError, match="unknown reference"):
        run_recipe(load_recipe(one_stage({"text": "${missing}"})))
    with pytest.raises(ConfigError, match="unknown options"):
        run_recipe(load_recipe(one_stage({"txt": "a"})))


def test_every_shipped_recipe_loads_and_names_only_known_stage_options() -> None:
    from longsift.options import recipe_fields
    from longsift.pipeline.recipe import RECIPES_DIR
    from longsift.pipeline.steps import LLM_KEYS, step_model

    shipped = sorted(RECIPES_DIR.glob("*.yaml"))
    assert {p.stem for p in shipped} >= {"tiny-cpu", "alpaca-longest-1k", "alpagasus-1k", "lima-1k", "alpaca-52k",
                                         "refined", "evol-longest-1k", "paper-study"}  # fmt: skip
    for path in shipped:
        recipe = load_recipe(path)
        for stage in recipe.stages:
            model = step_model(stage.uses)
            assert model is not None, stage.uses
            known = set(recipe_fields(model))
            STEPS.get(stage.uses)
            assert set(stage.options) <= known, (path.name, stage.name, stage.options)  # new names only
            assert set(stage.options.get("llm", {})) <= LLM_KEYS, (path.name, stage.name)


def test_every_shipped_recipe_passes_the_whole_recipe_check(tmp_path: Path) -> None:
    from longsift.pipeline.recipe import RECIPES_DIR
    from longsift.pipeline.runner import check_recipe

    for path in sorted(RECIPES_DIR.glob("*.yaml")):
        recipe = load_recipe(path, [f"run_dir={tmp_path / path.stem}"])
        run_dir = recipe.resolved_run_dir()
        check_recipe(recipe, run_dir, {"data": "/data", "run": str(run_dir), "name": recipe.name, "seed": "0"})


# -- verified manifests ------------------------------------------------------------------------------------------


def test_a_stage_whose_output_was_changed_or_deleted_runs_again(tmp_path: Path) -> None:
    run_recipe(load_recipe(recipe_file(tmp_path)))
    first = tmp_path / "run" / "first.txt"
    recorded = orjson.loads((tmp_path / "run" / ".stages" / "first" / "manifest.json").read_bytes())["files"]
    assert recorded["first.txt"]["size"] == 1 and recorded["first.txt"]["sha256"] == hashlib.sha256(b"a").hexdigest()

    first.write_text("x")  # same size, new content
    result = run_recipe(load_recipe(recipe_file(tmp_path)))
    assert result.ran == ["first"] and result.skipped == ["second"] and first.read_text() == "a"

    stat = first.stat()
    first.write_text("y")
    os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # content changed, size and mtime restored
    assert run_recipe(load_recipe(recipe_file(tmp_path))).ran == ["first"]

    (tmp_path / "run" / "second.txt").unlink()
    result = run_recipe(load_recipe(recipe_file(tmp_path)))
    assert result.skipped == ["first"] and result.ran == ["second"]

    (tmp_path / "run" / "first.txt").write_text("{half")  # a different size: no hash needed to see it
    assert run_recipe(load_recipe(recipe_file(tmp_path))).ran == ["first"]
    assert runs(tmp_path, "first") == 4 and runs(tmp_path, "second") == 2


def test_a_copied_run_is_rehashed_once_and_then_skipped(tmp_path: Path) -> None:
    run_recipe(load_recipe(recipe_file(tmp_path)))
    manifest_file = tmp_path / "run" / ".stages" / "first" / "manifest.json"
    before = orjson.loads(manifest_file.read_bytes())["files"]["first.txt"]
    first = tmp_path / "run" / "first.txt"
    data = first.read_bytes()
    first.unlink()
    first.write_bytes(data)  # same bytes, new inode: as after `cp -r`
    result = run_recipe(load_recipe(recipe_file(tmp_path)))
    assert result.skipped == ["first", "second"]
    after = orjson.loads(manifest_file.read_bytes())["files"]["first.txt"]
    assert after["sha256"] == before["sha256"] and after["ino"] == first.stat().st_ino


def test_a_forced_stage_that_dies_leaves_no_manifest(tmp_path: Path) -> None:
    run_recipe(load_recipe(recipe_file(tmp_path)))

    def dies(context: StageContext) -> dict[str, str]:
        raise RuntimeError("killed")

    STEPS.register("dies", dies)
    recipe = load_recipe(recipe_file(tmp_path))
    recipe.stages[1].uses = "dies"
    recipe.stages[1].options = {}
    with pytest.raises(RuntimeError):
        run_recipe(recipe, force=["second"])
    assert not (tmp_path / "run" / ".stages" / "second" / "manifest.json").exists()
    assert (tmp_path / "run" / "second.txt").read_text() == "ab"  # the previous output is untouched
    assert run_recipe(load_recipe(recipe_file(tmp_path))).ran == ["second"]


# -- whole recipe checked before stage 1 -------------------------------------------------------------------------


def write_recipe(tmp_path: Path, stages: list[dict], **extra) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({"name": "toy", "run_dir": str(tmp_path / "run"), "stages": stages, **extra}))
    return path


def nothing_ran(tmp_path: Path) -> bool:
    run = tmp_path / "run"
    return not run.exists() or not any(run.glob("*.runs"))


def test_an_unknown_llm_key_in_the_last_stage_stops_the_run_before_stage_one(tmp_path: Path) -> None:
    stages = [
        {"name": "first", "uses": "write-text", "with": {"text": "a"}},
        {"name": "score", "uses": "score", "with": {"input": "${first}", "llm": {"model": "m", "temprature": 0}}},
    ]
    with pytest.raises(ConfigError, match=r"unknown llm options \['temprature'\]"):
        run_recipe(load_recipe(write_recipe(tmp_path, stages)))
    assert nothing_ran(tmp_path)


@pytest.mark.parametrize(
    ("llm", "message"),
    [
        ({"backend": "opneai"}, "unknown llm backend 'opneai'"),
        ({"concurrency": 0}, "concurrency must be at least 1"),
        ("gpt-4", "llm must be a mapping"),
        ({"model": "m", "timeout": -1}, "timeout must be positive"),
    ],
)
def test_bad_llm_blocks_are_caught_before_anything_runs(tmp_path: Path, llm: object, message: str) -> None:
    stages = [
        {"name": "first", "uses": "write-text", "with": {"text": "a"}},
        {"name": "judge", "uses": "judge", "with": {"a": "${first}", "b": "${first}", "llm": llm}},
    ]
    with pytest.raises(ConfigError, match=message):
        run_recipe(load_recipe(write_recipe(tmp_path, stages)))
    assert nothing_ran(tmp_path)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    stages = [
        {"name": "first", "uses": "write-text", "with": {"text": "${second}"}},
        {"name": "second", "uses": "write-txt", "with": {"text": "b"}},
        {"name": "third", "uses": "select", "with": {"source": "${first.nope}", "k": 1, "sort": "x"}},
        {"name": "fourth", "uses": "write-text", "with": {"text": "${missing}", "input": "${fourth}"}},
    ]
    with pytest.raises(ConfigError) as caught:
        run_recipe(load_recipe(write_recipe(tmp_path, stages)))
    message = str(caught.value)
    assert "\n" not in message and message.startswith("recipe 'toy' has 6 problems, nothing ran: ")
    for part in (
        "${second} refers to stage 'second', which runs later",
        "unknown stage kind 'write-txt' (did you mean 'write-text'?)",
        "${first.nope}: stage 'first' has no output 'nope'",
        "stage 'third' (select): unknown options ['sort']",
        "unknown reference ${missing}",
        "${fourth} refers to the stage itself",
    ):
        assert part in message
    assert nothing_ran(tmp_path)


def test_the_cli_prints_one_line_and_exits_2(cli, tmp_path: Path) -> None:
    stages = [{"name": "s", "uses": "select", "with": {"source": "x.json", "name": "../../escaped"}}]
    result = cli("run", str(write_recipe(tmp_path, stages)), check=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: recipe 'toy' has a problem")
    assert "must be a plain file name" in result.stderr and "Traceback" not in result.stderr


# -- confined to the run folder ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uses", "name"),
    [
        ("select", "../../x"),
        ("select", "../x"),
        ("select", ".."),
        ("select", "a/b"),
        ("generate", "/tmp/abs"),
        ("train", ".."),
        ("refine", "x/../../../y"),
        ("score", ".hidden"),
        ("select", "a\\b"),
        ("select", ""),
        ("select", 7),
    ],
)
def test_output_names_that_leave_the_run_folder_are_refused(tmp_path: Path, uses: str, name: object) -> None:
    stages = [{"name": "s", "uses": uses, "with": {"name": name}}]
    with pytest.raises(ConfigError, match="must be a plain file name"):
        run_recipe(load_recipe(write_recipe(tmp_path, stages)))
    assert not (tmp_path / "run").exists() and not (tmp_path / "x").exists()


def test_symlinks_leading_out_of_the_run_folder_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    run = tmp_path / "run"
    run.mkdir()
    stages = [{"name": "s", "uses": "select", "with": {"source": "in.json", "k": 1, "name": "picked"}}]
    (run / "select").symlink_to(outside)  # the stage folder itself
    with pytest.raises(ConfigError, match="outside the run folder"):
        run_recipe(load_recipe(write_recipe(tmp_path, stages)))
    (run / "select").unlink()
    (run / "select").mkdir()
    (run / "select" / "picked.json").symlink_to(outside / "target.json")  # the output file
    with pytest.raises(ConfigError, match="picked.json.*outside the run folder"):
        run_recipe(load_recipe(write_recipe(tmp_path, stages)))
    (run / "select" / "picked.json").unlink()
    (run / "train").mkdir()
    (run / "train" / "m").symlink_to(outside, target_is_directory=True)  # any folder a stage writes in
    with pytest.raises(ConfigError, match="train/m is a symlink"):
        run_recipe(load_recipe(write_recipe(tmp_path, stages)))
    assert list(outside.iterdir()) == []


def test_a_step_that_writes_outside_the_run_folder_is_caught(tmp_path: Path) -> None:
    def escapes(context: StageContext) -> dict[str, str]:
        out = tmp_path / "outside.txt"
        out.write_text("x")
        return {"output": str(out)}

    STEPS.register("escapes", escapes)
    with pytest.raises(ConfigError, match="outside the run folder"):
        run_recipe(load_recipe(write_recipe(tmp_path, [{"name": "s", "uses": "escapes"}])))
    assert not (tmp_path / "run" / ".stages" / "s" / "manifest.json").exists()


def test_inputs_may_live_anywhere_and_links_inside_the_run_are_fine(tmp_path: Path) -> None:
    source = tmp_path / "elsewhere" / "in.txt"
    source.parent.mkdir()
    source.write_text("in:")
    run = tmp_path / "run"
    (run / "generate").mkdir(parents=True)
    (run / "report").mkdir()
    (run / "generate" / "old.jsonl").symlink_to(run / "report")  # points inside: allowed
    stages = [{"name": "first", "uses": "write-text", "with": {"text": "a", "input": str(source)}}]
    assert run_recipe(load_recipe(write_recipe(tmp_path, stages))).ran == ["first"]
    assert (run / "first.txt").read_text() == "in:a" and source.read_text() == "in:"


def test_a_stage_whose_output_is_its_input_is_refused(tmp_path: Path) -> None:
    select = tmp_path / "run" / "select"
    select.mkdir(parents=True)
    (select / "same.json").write_text("[]")
    stages = [{"name": "s", "uses": "select", "with": {"source": str(select / "same.json"), "k": 1, "name": "same"}}]
    with pytest.raises(ConfigError, match="is its input"):
        run_recipe(load_recipe(write_recipe(tmp_path, stages)))
    assert (select / "same.json").read_text() == "[]"


# -- bounded YAML ------------------------------------------------------------------------------------------------


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    lines = ["name: bomb", f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * width)}]")
    lines.append(f"stages: [{{name: s, uses: select, with: {{source: *l{levels - 1}}}}}]")
    return "\n".join(lines) + "\n"


def test_a_yaml_alias_bomb_is_refused_in_bounded_memory_and_time(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb())  # 9**9 = 387 million strings once expanded
    assert bomb.stat().st_size < 700
    with pytest.raises(ConfigError, match="expands to more than 20000 nodes \\(the limit"):
        load_recipe(bomb)
    limit = 1 << 30  # the CLI, in a process that may use 1 GiB at most and 60 s
    code = f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))\n"
    code += "from longsift.cli import main; main()"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code, "run", str(bomb)], env=env, capture_output=True, timeout=60,
                          text=True)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and "alias bomb" in done.stderr and done.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nstages: &s [*s]\n", "refers to the node that contains it"),
        ("name: x\nstages: " + "[" * 2000 + "]" * 2000 + "\n", "nested too deeply|nested deeper"),
        ("name: x\nstages: " + "[" * 70 + "]" * 70 + "\n", "nested deeper than 64 levels"),
        ("- just\n- a list\n", "a recipe is a YAML mapping"),
        ("name: x\n---\nname: y\n", "invalid YAML: expected a single document"),
        ("name: x\nname: y\nstages: []\n", "line 2: key 'name' is given twice"),
        ("name: x\nstages: [{name: a, uses: select, with: {k: 1, k: 2}}]\n", "key 'k' is given twice"),
        ("name: x\nseed: " + "9" * 5000 + "\nstages: []\n", "invalid YAML value"),
        ("name: x\nstages: [{name: a, uses: select, with: {[1]: 2}}]\n", "invalid YAML.*unhashable key"),
        ("name: x\nstages: " + "[1, " * 10 + "]" * 10 + "\n" + "big: [" + "0, " * 30000 + "]\n", "more than 20000"),
        ("name: !!python/object:os.system x\n", "invalid YAML"),
        ("name: x\nstages: [\n", "invalid YAML"),
    ],
)
def test_hostile_yaml_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_recipe(path)
    assert "\n" not in str(caught.value)


def test_recipe_files_are_bounded_in_size_and_must_be_utf8(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("name: x\n" + "#" * (1 << 20) + "\n")
    with pytest.raises(ConfigError, match=f"larger than {1 << 20} bytes"):
        load_recipe(big)
    assert load_recipe(big, max_bytes=2 << 20, overrides=["stages=[]"]).name == "x"
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\nstages: []\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_recipe(latin)


def test_a_few_anchors_and_merge_keys_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        f"name: x\nrun_dir: {tmp_path / 'run'}\nstages:\n  - &one {{name: one, uses: write-text, with: {{text: a}}}}\n"
        "  - {<<: *one, name: two}\n"
    )
    recipe = load_recipe(path)
    assert [(s.name, s.options) for s in recipe.stages] == [("one", {"text": "a"}), ("two", {"text": "a"})]


def test_an_override_into_a_value_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a mapping|not a mapping"):
        load_recipe(recipe_file(tmp_path), ["name.x=1"])
    levels = ["&a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"] + [f"&{b} [{', '.join([f'*{a}'] * 10)}]" for a, b in ("ab", "bc")]
    with pytest.raises(ConfigError, match="alias bomb"):
        load_recipe(recipe_file(tmp_path), [f"seed=[{', '.join(levels)}, [{', '.join(['*c'] * 30)}]]"])


def test_a_run_folder_that_is_a_file_or_holds_files_in_the_way_is_refused(tmp_path: Path) -> None:
    stages = [{"name": "s", "uses": "select", "with": {"source": "in.json", "k": 1, "name": "picked"}}]
    (tmp_path / "run").write_text("not a folder")
    with pytest.raises(ConfigError, match="the run folder .* is a file"):
        run_recipe(load_recipe(write_recipe(tmp_path, stages)))
    (tmp_path / "run").unlink()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "select").write_text("in the way")
    with pytest.raises(ConfigError, match="select is a file, not a folder"):
        run_recipe(load_recipe(write_recipe(tmp_path, stages)))


def test_two_stages_writing_one_file_are_refused(tmp_path: Path) -> None:
    stages = [
        {"name": "a", "uses": "select", "with": {"source": "in.json", "k": 1, "name": "picked"}},
        {"name": "b", "uses": "select", "with": {"source": "in.json", "k": 2, "name": "picked"}},
        {"name": "picked", "uses": "select", "with": {"source": "in.json", "k": 3}},
        {"name": "c", "uses": "select", "with": {"source": "in.json", "k": 2, "name": "other"}},
    ]
    with pytest.raises(ConfigError, match="has 2 problems") as caught:
        run_recipe(load_recipe(write_recipe(tmp_path, stages)))
    assert "stages 'a' and 'b' both write" in str(caught.value) and "'a' and 'picked'" in str(caught.value)


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: {**m, "files": {"../outside.txt": m["files"]["first.txt"]}},
        lambda m: {**m, "files": {"first.txt": "not a record"}},
        lambda m: {**m, "files": []},
        lambda m: {**m, "outputs": {"output": 7}},
    ],
)
def test_a_manifest_edited_into_another_shape_proves_nothing(tmp_path: Path, edit) -> None:
    run_recipe(load_recipe(recipe_file(tmp_path)))
    (tmp_path / "outside.txt").write_text("a")
    path = tmp_path / "run" / ".stages" / "first" / "manifest.json"
    path.write_bytes(orjson.dumps(edit(orjson.loads(path.read_bytes()))))
    assert run_recipe(load_recipe(recipe_file(tmp_path))).ran == ["first"]


def test_a_torn_manifest_means_not_done(tmp_path: Path) -> None:
    run_recipe(load_recipe(recipe_file(tmp_path)))
    path = tmp_path / "run" / ".stages" / "second" / "manifest.json"
    path.write_bytes(path.read_bytes()[:40])
    result = run_recipe(load_recipe(recipe_file(tmp_path)))
    assert result.skipped == ["first"] and result.ran == ["second"]
    assert orjson.loads(path.read_bytes())["status"] == "complete"


def test_train_recipes_are_read_with_the_same_bounds(tmp_path: Path) -> None:
    from longsift.train.config import RECIPE_DIR, read_recipe

    for path in sorted(RECIPE_DIR.glob("*.yaml")):
        assert isinstance(read_recipe(path), dict), path.name
    bomb = tmp_path / "train-bomb.yaml"
    bomb.write_text(alias_bomb())
    with pytest.raises(ConfigError, match="train-bomb.yaml: YAML expands to more than 20000 nodes"):
        read_recipe(bomb)


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", "/abs", ".hidden", "two words"])
def test_a_recipe_name_is_a_plain_file_name(tmp_path: Path, name: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"name": name, "stages": []}))
    with pytest.raises(ConfigError, match="name: String should match pattern"):
        load_recipe(path)


def test_a_stage_manifest_of_an_earlier_schema_is_not_current(tmp_path: Path) -> None:
    """What the runner wrote before the one schema: the stage runs again (no crash), then skips as usual."""
    run_recipe(load_recipe(recipe_file(tmp_path)))
    path = tmp_path / "run" / ".stages" / "first" / "manifest.json"
    data = (tmp_path / "run" / "first.txt").read_bytes()
    old = {"stage": "first", "uses": "write-text", "status": "complete", "options": {"text": "a"},
           "options_digest": "0" * 64, "inputs": {}, "outputs": {"output": str(tmp_path / "run" / "first.txt")},
           "files": {"first.txt": {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}},
           "versions": {}, "seconds": 0.1, "finished_at": 0}  # fmt: skip
    path.write_bytes(orjson.dumps(old))
    log = tmp_path / "log.txt"
    with log.open("w") as handle:
        from rich.console import Console

        result = run_recipe(load_recipe(recipe_file(tmp_path)), console=Console(file=handle, width=200))
    assert result.ran == ["first"] and result.skipped == ["second"]
    assert "rerun first (write-text): its manifest is of an older schema" in log.read_text()
    assert orjson.loads(path.read_bytes())["version"] == 1
    assert run_recipe(load_recipe(recipe_file(tmp_path))).skipped == ["first", "second"]


def test_only_declared_options_are_inputs(tmp_path: Path) -> None:
    """A string that happens to name a file is an option, not an input: no guessing from `/` in values."""
    named = tmp_path / "elsewhere.txt"
    named.write_text("1")
    recipe = tmp_path / "recipe.yaml"
    stage = {"name": "first", "uses": "write-text", "with": {"text": str(named)}}
    recipe.write_text(yaml.safe_dump({"name": "toy", "run_dir": str(tmp_path / "run"), "stages": [stage]}))
    run_recipe(load_recipe(recipe))
    named.write_text("2")
    assert run_recipe(load_recipe(recipe)).skipped == ["first"]
    record = orjson.loads((tmp_path / "run" / ".stages" / "first" / "manifest.json").read_bytes())
    assert record["inputs"] == [] and record["options"] == {"text": str(named)}
