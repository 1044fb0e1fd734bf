"""AlpacaEval interop: model_outputs export, raw metrics against the leaderboard, the length-controlled GLM."""

from __future__ import annotations

import csv
import gzip
import importlib.util
import json
import math
import socket
import statistics
from pathlib import Path

import numpy as np
import pytest

from longsift.errors import DataError, LongsiftError
from longsift.judge import alpacaeval, length_control
from longsift.records import Generation

ANNOTATIONS = "alpaca_eval/annotations/alpaca-7b__weighted_alpaca_eval_gpt4_turbo.json.gz"
LEADERBOARD = "alpaca_eval/leaderboards/alpaca_eval_2__weighted_alpaca_eval_gpt4_turbo_leaderboard.csv"
WEIGHTS = "alpaca_eval/evaluator/length_controlled_v1_weights_baseline_gpt4_1106_preview.csv"


def csv_row(path: Path, name: str) -> dict[str, str]:
    with path.open(newline="") as handle:
        return next(row for row in csv.DictReader(handle) if row[""] == name)


# --- raw metrics -------------------------------------------------------------------------------------------


def test_alpaca_7b_annotations_reproduce_the_leaderboard(data_dir: Path) -> None:
    expected = csv_row(data_dir / LEADERBOARD, "alpaca-7b")
    score = alpacaeval.score_annotations(data_dir / ANNOTATIONS, hub=False)
    assert (score.model, score.baseline) == ("alpaca-7b", "gpt4_1106_preview")
    assert score.win_rate == pytest.approx(float(expected["win_rate"]), abs=1e-3)
    assert score.standard_error == pytest.approx(float(expected["standard_error"]), abs=1e-3)
    assert score.discrete_win_rate == pytest.approx(float(expected["discrete_win_rate"]), abs=1e-3)
    for key in ("n_wins", "n_wins_base", "n_draws", "n_total", "avg_length"):
        assert getattr(score, key) == int(expected[key]), key
    assert score.length_controlled_winrate is None
    assert "--no-hub" in score.length_controlled_note


def test_preference_encodings_by_hand() -> None:
    # 0 and 1.5 are draws, None failed, 2.5 out of range; the discrete rule rounds half to even (2.5 -> 2)
    metrics = alpacaeval.head_to_head([2, 1, 1.5, 0, None, 1.75, 2.5, 1.5000001])
    kept = [1, 0, 0.5, 0.5, 0.75, 0.5000001]
    assert metrics["win_rate"] == pytest.approx(100 * sum(kept) / 6)
    assert metrics["standard_error"] == pytest.approx(100 * statistics.stdev(kept) / math.sqrt(6))
    assert (metrics["n_wins"], metrics["n_wins_base"], metrics["n_draws"], metrics["n_total"]) == (3, 1, 2, 6)
    assert metrics["discrete_win_rate"] == pytest.approx(100 * 5 / 7)  # 1, 0, .5, .5, 1, 1, 1


def test_reference_against_itself_matches_its_leaderboard_row(data_dir: Path, tmp_path: Path) -> None:
    outputs = json.loads((data_dir / "alpaca_eval/model_outputs/gpt4_1106_preview.json").read_text())
    rows = [
        {"instruction": o["instruction"], "output_1": o["output"], "generator_1": "gpt4_1106_preview",
         "output_2": o["output"], "generator_2": "gpt4_1106_preview", "annotator": "weighted_alpaca_eval_gpt4_turbo",
         "preference": 1.5}
        for o in outputs
    ]  # fmt: skip
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(rows))
    expected = csv_row(data_dir / LEADERBOARD, "gpt4_1106_preview")
    score = alpacaeval.score_annotations(path, hub=False)
    assert score.win_rate == float(expected["win_rate"]) and score.standard_error == 0.0
    assert score.discrete_win_rate == float(expected["discrete_win_rate"])
    assert score.length_controlled_winrate == float(expected["length_controlled_winrate"]) == 50.0
    assert (score.n_draws, score.n_total, score.avg_length) == (805, 805, int(expected["avg_length"]))


AE1_LEADERBOARD = "alpaca_eval/leaderboards/alpaca_eval_1__alpaca_eval_gpt4_leaderboard.csv"


def test_avg_length_is_over_the_model_outputs_as_the_leaderboard(data_dir: Path, tmp_path: Path, cli) -> None:
    """AlpacaEval 1.0 lists gpt4_1106_preview with n_total 804 and avg_length 2049, the mean over all its 805
    outputs: the annotation that failed still counts in avg_length. Here the annotations lose the row of the
    longest output (as a failed merge or a judge that never answered would) and fail one more."""
    outputs_path = data_dir / "alpaca_eval/model_outputs/gpt4_1106_preview.json"
    outputs = json.loads(outputs_path.read_text())
    expected = csv_row(data_dir / AE1_LEADERBOARD, "gpt4_1106_preview")
    longest = max(range(len(outputs)), key=lambda i: len(outputs[i]["output"]))
    rows = [
        {"instruction": o["instruction"], "output_1": "ref", "generator_1": "text_davinci_003", "output_2": o["output"],
         "generator_2": "gpt4_1106_preview", "annotator": "alpaca_eval_gpt4", "preference": None if i == 0 else 2.0}
        for i, o in enumerate(outputs) if i != longest
    ]  # fmt: skip
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(rows))
    from_annotations = alpacaeval.score_annotations(path, hub=False)
    assert from_annotations.avg_length != int(expected["avg_length"])  # the longest output is missing there
    score = alpacaeval.score_annotations(path, hub=False, model_outputs=outputs_path)
    assert (score.n_total, score.avg_length) == (803, int(expected["avg_length"]))
    assert (score.win_rate, score.discrete_win_rate) == (from_annotations.win_rate, from_annotations.discrete_win_rate)
    printed = cli("alpacaeval", "score", str(path), "--no-hub", "--json", "--model-outputs", str(outputs_path))
    assert json.loads(printed.stdout.splitlines()[-1])["avg_length"] == 2049


def test_avg_length_follows_pandas_on_nulls_and_empty_outputs() -> None:
    # pandas' str.len() gives NaN for null (skipped by mean) and 0 for "" (counted); int() truncates
    assert alpacaeval.leaderboard_avg_length(["abc", None, "", "abcdefg"]) == 3  # (3 + 0 + 7) / 3
    assert alpacaeval.leaderboard_avg_length([None]) == 0


def test_not_an_annotations_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps([{"instruction": "x", "output": "y"}]))
    with pytest.raises(DataError, match="no 'output_1'"):
        alpacaeval.score_annotations(path)


# --- length-controlled GLM ---------------------------------------------------------------------------------


def synthetic_study(
    data_dir: Path, weights: np.ndarray, seed: int, sampled: bool = False, repeat: int = 1
) -> tuple[list[dict], list[dict], np.ndarray]:
    """Annotations (real alpaca-7b lengths) and a df_gamed table whose preferences follow the GLM `weights`.

    Returns (annotations, df_gamed rows, instruction difficulties). With `sampled`, preferences are coin
    flips (1 or 2) from the model's probability instead of the probability itself.
    """
    rng = np.random.default_rng(seed)
    with gzip.open(data_dir / ANNOTATIONS) as handle:
        real = json.load(handle)
    len_1 = np.tile([len(r["output_1"]) for r in real], repeat)
    len_2 = np.tile([len(r["output_2"]) for r in real], repeat)
    n = len(len_1)
    difficulty = rng.normal(0.0, 1.0, n)
    delta = len_1 - len_2
    p = length_control.sigmoid(np.column_stack([np.tanh(delta / delta.std(ddof=1)), difficulty, np.ones(n)]) @ weights)
    preference = 1 + (rng.random(n) < p) if sampled else 1 + p
    annotations = [
        {"instruction": f"q{i}", "output_1": "a" * int(len_1[i]), "generator_1": "gpt4_1106_preview",
         "output_2": "b" * int(len_2[i]), "generator_2": "synthetic", "annotator": "synthetic",
         "preference": float(preference[i])}
        for i in range(n)
    ]  # fmt: skip
    gamed = []
    for model, shift in (("gpt4_1106_preview_verbose", -1.0), ("gpt4_1106_preview_concise", 1.0)):
        std_delta = rng.normal(shift, 1.0, n)
        q = length_control.sigmoid(weights[0] * np.tanh(std_delta) + weights[1] * difficulty)
        q = (rng.random(n) < q).astype(float) if sampled else q
        gamed += [
            {"index": i, "model": model, "instruction_difficulty": difficulty[i], "preference": q[i],
             "std_delta_len": std_delta[i], "not_gamed_baseline": False}
            for i in range(n)
        ]  # fmt: skip
    return annotations, gamed, difficulty


def write_study(tmp_path: Path, annotations: list[dict], gamed: list[dict]) -> tuple[Path, Path]:
    annotations_path, table_path = tmp_path / "annotations.json", tmp_path / "df_gamed.csv"
    annotations_path.write_text(json.dumps(annotations))
    with table_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(gamed[0]))
        writer.writeheader()
        writer.writerows(gamed)
    return annotations_path, table_path


def alpaca_7b_weights(data_dir: Path) -> np.ndarray:
    row = csv_row(data_dir / WEIGHTS, "alpaca-7b")
    return np.array([float(row[name]) for name in length_control.FEATURES])


def test_lc_fit_recovers_the_generating_model_through_the_cli(data_dir: Path, tmp_path: Path, cli) -> None:
    truth = alpaca_7b_weights(data_dir)  # AlpacaEval's own fitted weights for alpaca-7b, as the known model
    annotations, gamed, difficulty = synthetic_study(data_dir, truth, seed=1)
    annotations_path, table_path = write_study(tmp_path, annotations, gamed)
    result = json.loads(
        cli("alpacaeval", "score", str(annotations_path), "--difficulty", str(table_path), "--json").stdout
    )
    fitted = np.array([result["length_controlled_weights"][name] for name in length_control.FEATURES])
    np.testing.assert_allclose(fitted, truth, atol=2e-3)
    analytic = 100 * np.mean(length_control.sigmoid(truth[1] * difficulty + truth[2]))
    assert result["length_controlled_winrate"] == pytest.approx(analytic, abs=0.01)
    # its answers are shorter than the reference's: LC gives back the wins that length cost it
    assert result["length_controlled_winrate"] > result["win_rate"] + 0.5
    assert "C=" in result["length_controlled_note"]


def test_lc_fit_on_coin_flips_is_within_its_standard_errors(data_dir: Path) -> None:
    truth = np.array([-1.2, 0.8, 0.3])
    annotations, gamed, difficulty = synthetic_study(data_dir, truth, seed=7, sampled=True, repeat=3)
    table = length_control.DifficultyTable(
        dict(enumerate(difficulty)),
        np.array([[np.tanh(g["std_delta_len"]), g["instruction_difficulty"], 0.0] for g in gamed]),
        np.array([g["preference"] for g in gamed]), "synthetic",
    )  # fmt: skip
    fit = length_control.fit_length_controlled(
        [a["output_1"] for a in annotations], [a["output_2"] for a in annotations],
        [a["preference"] for a in annotations], table,
    )  # fmt: skip
    fitted = np.array([fit.weights[name] for name in length_control.FEATURES])
    # standard errors from the Fisher information of the weighted fit at the truth
    delta = np.array([len(a["output_1"]) - len(a["output_2"]) for a in annotations], dtype=float)
    x = np.vstack([
        np.column_stack([np.tanh(delta / delta.std(ddof=1)), difficulty, np.ones(len(delta))]),
        table.gamed_features,
    ])  # fmt: skip
    w = np.concatenate([np.ones(len(delta)), np.full(len(gamed), length_control.GAMED_WEIGHT)])
    p = length_control.sigmoid(x @ truth)
    stderr = np.sqrt(np.diag(np.linalg.inv(x.T @ (x * (w * p * (1 - p))[:, None]))))
    assert np.all(np.abs(fitted - truth) < 4 * stderr), (fitted, truth, stderr)
    analytic = 100 * np.mean(length_control.sigmoid(truth[1] * difficulty + truth[2]))
    assert fit.winrate == pytest.approx(analytic, abs=2.0)
    assert fit.regularized


def test_l1_solver_meets_the_optimality_conditions() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 3))
    y = length_control.sigmoid(x @ np.array([1.5, -0.05, 0.7]) + rng.normal(0, 0.5, 400))
    sample_weight = rng.uniform(0.1, 1.0, 400)
    for c in (0.02, 0.5, 100.0):
        w = length_control.fit_l1_logistic(x, y, sample_weight, c)
        grad = x.T @ (sample_weight * (length_control.sigmoid(x @ w) - y))
        for j in range(3):
            if w[j] != 0:  # stationary: grad_j + sign(w_j) / C = 0
                assert grad[j] + np.sign(w[j]) / c == pytest.approx(0, abs=1e-6)
            else:  # zero is optimal: |grad_j| <= 1 / C
                assert abs(grad[j]) <= 1 / c + 1e-9
    assert np.all(length_control.fit_l1_logistic(x, y, sample_weight, 1e-4) == 0)  # the strongest C of the grid
    assert np.count_nonzero(length_control.fit_l1_logistic(x, y, sample_weight, 0.02)) < 3  # L1 drops the weakest


def test_length_difference_is_standardized_with_the_sample_deviation() -> None:
    # deltas 2, 0, 4 (reference minus model, characters): mean 2, sample deviation 2; a missing output is NaN
    scaled = length_control.standardized_length_difference(["abc", "é", "xxxxx", None], ["a", "b", "y", "z"])
    np.testing.assert_allclose(scaled, [1.0, 0.0, 2.0, np.nan])


def test_group_folds_follow_group_kfold_for_equal_groups() -> None:
    # sklearn hands equal-size groups out from the last one, each to the lightest (first) fold
    assert length_control.group_folds(7, 5).tolist() == [1, 0, 4, 3, 2, 1, 0]


def test_difficulty_table_without_gamed_rows_fits_unregularized(data_dir: Path, tmp_path: Path) -> None:
    truth = np.array([-0.9, 0.6, -0.4])
    annotations, _, difficulty = synthetic_study(data_dir, truth, seed=2)
    path = tmp_path / "instruction_difficulty.csv"
    path.write_text("," + "instruction_difficulty\n" + "".join(f"{i},{float(d)!r}\n" for i, d in enumerate(difficulty)))
    annotations_path = tmp_path / "annotations.json"
    annotations_path.write_text(json.dumps(annotations))
    score = alpacaeval.score_annotations(annotations_path, path)
    fitted = np.array([score.length_controlled_weights[name] for name in length_control.FEATURES])
    np.testing.assert_allclose(fitted, truth, atol=2e-3)
    assert "not the official LC" in score.length_controlled_note


def test_gamed_rows_in_the_one_to_two_encoding_give_the_same_fit(data_dir: Path, tmp_path: Path) -> None:
    annotations, gamed, _ = synthetic_study(data_dir, np.array([-1.0, 0.5, 0.2]), seed=5)
    first = write_study(tmp_path, annotations, gamed)
    shifted = tmp_path / "shifted"
    shifted.mkdir()
    second = write_study(shifted, annotations, [{**g, "preference": g["preference"] + 1} for g in gamed])
    a, b = (alpacaeval.score_annotations(*paths) for paths in (first, second))
    assert a.length_controlled_winrate == pytest.approx(b.length_controlled_winrate, abs=1e-9)


# --- where the difficulty table comes from -----------------------------------------------------------------


def test_lc_is_null_and_explained_when_offline(data_dir: Path, tmp_path: Path, cli) -> None:
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    result = cli("alpacaeval", "score", str(data_dir / ANNOTATIONS), "--json", env=env, timeout=60)
    payload = json.loads(result.stdout)
    assert payload["length_controlled_winrate"] is None
    assert payload["win_rate"] == pytest.approx(2.5915, abs=1e-4) and payload["n_total"] == 805
    assert "df_gamed.csv" in result.stderr and "--difficulty" in result.stderr and "HF_HUB_OFFLINE" in result.stderr


def test_unreachable_hub_fails_fast(data_dir: Path, tmp_path: Path, cli) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": f"http://127.0.0.1:{port}"}
    result = cli("alpacaeval", "score", str(data_dir / ANNOTATIONS), "--json", env=env, timeout=60)
    assert json.loads(result.stdout)["length_controlled_winrate"] is None
    assert "unreachable" in result.stderr


def test_difficulty_table_is_found_in_the_hub_cache(data_dir: Path, tmp_path: Path, cli) -> None:
    truth = alpaca_7b_weights(data_dir)
    annotations, gamed, difficulty = synthetic_study(data_dir, truth, seed=4)
    annotations_path, table_path = write_study(tmp_path, annotations, gamed)
    repo = tmp_path / "hf" / "hub" / "datasets--tatsu-lab--alpaca_eval"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    (repo / "snapshots" / ("0" * 40)).mkdir(parents=True)
    table_path.rename(repo / "snapshots" / ("0" * 40) / "df_gamed.csv")
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    result = json.loads(cli("alpacaeval", "score", str(annotations_path), "--json", env=env).stdout)
    analytic = 100 * np.mean(length_control.sigmoid(truth[1] * difficulty + truth[2]))
    assert result["length_controlled_winrate"] == pytest.approx(analytic, abs=0.01)


def test_missing_difficulty_path_is_a_user_error(data_dir: Path, cli) -> None:
    result = cli("alpacaeval", "score", str(data_dir / ANNOTATIONS), "--difficulty", "/no/df_gamed.csv", check=False)
    assert result.returncode == 2
    assert "/no/df_gamed.csv" in result.stderr and "not found" in result.stderr


# --- export ------------------------------------------------------------------------------------------------


def test_export_rebuilds_alpaca_evals_model_outputs(data_dir: Path, tmp_path: Path, cli) -> None:
    original = json.loads((data_dir / "alpaca_eval/model_outputs/alpaca-7b.json").read_text())
    generations = [
        Generation(f"alpacaeval-{i}", "alpacaeval", "alpaca-7b", (o["instruction"],), (o["output"],),
                   {"dataset": o["dataset"]})
        for i, o in enumerate(original)
    ]  # fmt: skip
    generations.insert(3, Generation("vicuna-1", "vicuna", "alpaca-7b", ("hi",), ("hello",)))  # another eval set
    path = tmp_path / "generations.jsonl"
    path.write_text("".join(json.dumps(g.to_dict()) + "\n" for g in generations))
    cli("alpacaeval", "export", str(path), "-o", str(tmp_path / "model_outputs.json"))
    exported = json.loads((tmp_path / "model_outputs.json").read_text())
    assert exported == [{key: o[key] for key in ("instruction", "output", "generator", "dataset")} for o in original]

    cli("alpacaeval", "export", str(path), "-o", str(tmp_path / "renamed.json"), "--model-name", "longest-1k")
    assert {o["generator"] for o in json.loads((tmp_path / "renamed.json").read_text())} == {"longest-1k"}
    old = cli("alpacaeval", "export", str(path), "-o", str(tmp_path / "old.json"), "--generator", "old-name")
    assert old.stderr.splitlines()[0] == "warning: --generator is deprecated, use --model-name"  # one line, still works
    assert {o["generator"] for o in json.loads((tmp_path / "old.json").read_text())} == {"old-name"}


def test_export_refuses_mixed_models(tmp_path: Path) -> None:
    generations = [
        Generation("a", "alpacaeval", "m1", ("q",), ("x",)),
        Generation("b", "alpacaeval", "m2", ("q2",), ("y",)),
    ]
    with pytest.raises(LongsiftError, match="several models"):
        alpacaeval.export_model_outputs(generations, tmp_path / "out.json")
    assert alpacaeval.export_model_outputs(generations, tmp_path / "out.json", generator="mine") == 2
    assert "dataset" not in json.loads((tmp_path / "out.json").read_text())[0]


# --- leaderboards and the alpaca_eval package --------------------------------------------------------------


def test_read_leaderboards(data_dir: Path) -> None:
    rows = {row.name: row for row in alpacaeval.read_leaderboard(data_dir / LEADERBOARD)}
    assert len(rows) == 223
    alpaca = rows["alpaca-7b"]
    assert alpaca.win_rate == pytest.approx(2.591450540223603)
    assert alpaca.length_controlled_winrate == pytest.approx(5.875487163278986)
    assert (alpaca.avg_length, alpaca.n_total, alpaca.mode) == (396, 805, "minimal")
    docs = alpacaeval.read_leaderboard(str(data_dir / LEADERBOARD).replace(".csv", "_docs.csv"))
    assert docs[0].name == "NullModel (adversarial)" and docs[0].avg_length == 872
    v1_path = data_dir / "alpaca_eval/leaderboards/alpaca_eval_1__alpaca_eval_gpt4_leaderboard.csv"
    v1 = {row.name: row for row in alpacaeval.read_leaderboard(v1_path)}
    assert v1["gpt4_1106_preview"].win_rate == pytest.approx(97.69900497512438)
    with pytest.raises(DataError, match="win_rate"):
        alpacaeval.read_leaderboard(data_dir / WEIGHTS)


@pytest.mark.skipif(importlib.util.find_spec("alpaca_eval") is not None, reason="alpaca_eval is installed")
def test_run_without_alpaca_eval_says_how_to_install(tmp_path: Path, cli) -> None:
    result = cli("alpacaeval", "run", str(tmp_path / "model_outputs.json"), "-o", str(tmp_path / "out"), check=False)
    assert result.returncode == 2
    message = result.stderr.strip()
    assert message.count("\n") == 0 and "Traceback" not in message
    assert "pip install" in message and "alpaca-eval" in message and "setuptools<81" in message
