"""Registries: lookups, lazy entries, and the snapshot/restore that keeps a test's toy entries out of the next test."""

from __future__ import annotations

import pytest

from longsift.errors import UnknownNameError
from longsift.formats import WRITERS
from longsift.lengths import UNITS
from longsift.llm.backends import BACKENDS
from longsift.pipeline.runner import STEPS
from longsift.registry import Registry


def test_restore_all_removes_added_entries_and_puts_replaced_ones_back() -> None:
    registries = (STEPS, UNITS, WRITERS, BACKENDS)
    replaced = {registry: registry.names()[0] for registry in registries}
    originals = {registry: registry.get(name) for registry, name in replaced.items()}
    snapshot = Registry.snapshot_all()
    for registry in registries:
        registry.register("toy-entry", object())
        registry.register(replaced[registry], object())
    Registry.restore_all(snapshot)
    for registry in registries:
        assert "toy-entry" not in registry
        assert registry.get(replaced[registry]) is originals[registry]


def test_every_registry_is_in_a_snapshot_even_one_made_later() -> None:
    local: Registry[int] = Registry("toy")
    local.register("one", 1)
    snapshot = Registry.snapshot_all()
    local.register("two", 2)
    Registry.restore_all(snapshot)
    assert local.names() == ["one"]
    with pytest.raises(UnknownNameError):
        local.get("two")


def test_lazy_entries_load_on_first_get() -> None:
    local: Registry[object] = Registry("toy")
    local.register("path", "pathlib:Path")
    from pathlib import Path

    assert local.get("path") is Path


def test_a_toy_step_registered_by_an_earlier_test_is_gone(restore_registries: None) -> None:
    # test_pipeline_runner registers "dies" and "escapes"; the autouse fixture takes them back out after each test
    assert "dies" not in STEPS and "escapes" not in STEPS and "write-text" not in STEPS
