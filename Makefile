# Everything installs into .venv from this project's own files; CI runs `make test` (see .ci/run).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= ../shared/data

MIN_VENV ?= .venv-min
MIN_BIN := $(MIN_VENV)/bin

# The fast suite runs in this many pytest-xdist processes (CI has 2 cores; `make test TEST_PROCS=0`: one process).
TEST_PROCS ?= 2

.PHONY: install demo test test-all test-min test-ray lint bench

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0   # the CPU build; other versions download several GB
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# The main job: the paper's longest-1k selection on the public Alpaca pool, then its statistics.
demo: install
	$(BIN)/longsift select $(DATA)/alpaca_subsets/alpaca_public_pool.jsonl.gz -o out/alpaca-longest-1k.json --k 1000 --preset paper
	$(BIN)/longsift stats out/alpaca-longest-1k.json --compare $(DATA)/alpaca_subsets/alpaca_public_pool.jsonl.gz --by nltk -o out/stats

test: install
	$(BIN)/python -m pytest -q -n $(TEST_PROCS) -m "not slow and not ray"

# --executor ray: the optional extra, then the tests that start Ray clusters (CI runs them as their own step)
test-ray: install
	$(BIN)/pip install -q -e '.[ray]'
	$(BIN)/python -m pytest -q -m ray

# The declared floors, proven: every direct dependency at exactly its `>=` version (.ci/floors.py reads them
# from pyproject.toml), in a venv of its own, then the linters (mypy checks all of longsift against the floors'
# own type hints) and the tests at each dependency's boundary: FLOOR_TESTS, ~2 minutes where the whole fast
# suite takes 13 (CI's 30-minute budget); tests/test_floors.py checks that they reach every pinned library.
FLOOR_TESTS ?= tests/test_floors.py tests/test_formats.py tests/test_outputs.py tests/test_select_hub.py \
	tests/test_convert_fast.py tests/test_lengths.py tests/test_options.py tests/test_pipeline_runner.py \
	tests/test_llm_engine.py tests/test_llm_transformers.py tests/test_select_dedup.py tests/test_report.py \
	tests/test_stats_plot.py tests/test_train.py::test_packing_and_padding_free \
	tests/test_train.py::test_lora_with_gradient_checkpointing_trains_adapters_and_saves_a_merged_model \
	tests/test_train.py::test_a_rerun_resumes_from_the_last_checkpoint \
	tests/test_select_kcenter.py::test_kcenter_selects_the_greedy_centers_of_the_pool_embeddings \
	tests/test_openllm.py::test_local_tasks_end_to_end_on_the_tiny_model \
	tests/test_speed_exact.py::test_tokens_by_tokenizers_alone_equal_transformers

test-min: $(MIN_VENV)/.installed
	$(MIN_BIN)/ruff check . && $(MIN_BIN)/ruff format --check . && $(MIN_BIN)/mypy
	$(MIN_BIN)/python -m pytest -q -n $(TEST_PROCS) -m "not slow and not ray" $(FLOOR_TESTS)

$(MIN_VENV)/.installed: pyproject.toml .ci/floors.py
	$(PY) -m venv $(MIN_VENV)
	$(MIN_BIN)/pip install -q --upgrade pip
	$(PY) .ci/floors.py > $(MIN_VENV)/floors.txt
	$(MIN_BIN)/pip install -q -c $(MIN_VENV)/floors.txt -e '.[dev]'
	$(MIN_BIN)/pip check
	touch $@

test-all: install
	$(BIN)/python -m pytest -q -m "(slow or not slow) and not ray"

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

bench: install
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python bench/select.py
	$(BIN)/python bench/llm_throughput.py
	$(BIN)/python bench/llm_timing.py
	$(BIN)/python bench/generate.py
