"""The size estimate of a plan from the module tree (quantization.estimate)."""

from __future__ import annotations

import pytest

from speechquant.core.formatting import format_bytes
from speechquant.core.quantization.estimate import estimate_plan, summary_text
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.presets import make_preset
from speechquant.core.quantization.settings import QuantSettings
from speechquant.core.quantization.tree import build_tree

from ..toy_models import TOY_HEAD, toy_whisper_mods


@pytest.fixture(scope="module")
def tree(tiny_model):
    return build_tree(tiny_model.mods)


def test_estimate_follows_the_plan(tree):
    none = estimate_plan(tree, Plan())
    assert none.estimated_bytes == none.float_bytes == tree.root.total_bytes
    dynamic = estimate_plan(tree, make_preset("all-dynamic", tree))
    assert dynamic.estimated_bytes < none.float_bytes
    assert dynamic.schemes["dynamic"].entries == 1 and dynamic.schemes["dynamic"].layers > 4
    half = estimate_plan(
        tree, make_preset("all-dynamic", tree, QuantSettings(dynamic_dtype="float16"))
    )
    assert dynamic.estimated_bytes < half.estimated_bytes < none.float_bytes
    bf16 = estimate_plan(tree, make_preset("bf16", tree))
    assert bf16.float_bytes / 2 <= bf16.estimated_bytes < bf16.float_bytes
    assert "bf16" in summary_text(bf16) and "smaller" in summary_text(bf16)
    assert summary_text(none).startswith("no module quantized")


def test_a_tied_head_counts_only_where_its_own_entry_names_it():
    tree = build_tree(toy_whisper_mods())
    head = tree[TOY_HEAD]
    assert head.is_tied_head and head.class_name == "Embedding"
    size = tree.root.total_bytes
    inherited = estimate_plan(tree, Plan({"whisper.model.decoder": "dynamic"}))
    named = estimate_plan(tree, Plan({"whisper.model.decoder": "dynamic", TOY_HEAD: "dynamic"}))
    assert inherited.estimated_bytes - named.estimated_bytes == head.total_bytes // 2
    assert named.schemes["dynamic"].layers == inherited.schemes["dynamic"].layers + 1
    only_head = estimate_plan(tree, Plan({TOY_HEAD: "bf16"}))
    assert only_head.estimated_bytes == size - head.total_bytes // 2


def test_sizes_read_in_decimal_units_everywhere():
    assert format_bytes(None) == "-"
    assert format_bytes(512) == "512 B"
    assert format_bytes(1500) == "1.5 kB"
    assert format_bytes(151_110_000) == "151.1 MB"
    assert format_bytes(3e9) == "3.0 GB"
