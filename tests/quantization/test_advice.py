"""Hardware advice per scheme, judged on injected CPU descriptions and on measured ratios."""

from __future__ import annotations

import pytest

from speechquant.core.machine import CpuInfo, describe_cpu
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.schemes import get_scheme, scheme_advice
from speechquant.core.quantization.settings import QuantSettings
from speechquant.core.quantization.tree import build_tree, format_tree
from speechquant.core.quantization.validation import (
    EngineSpeed,
    engine_warnings,
    plan_warnings,
    validate_plan,
)

from ..toy_models import TOY_HEAD, toy_whisper_mods

AVX2_ONLY = describe_cpu(
    "model name\t: AMD EPYC 7B13\nflags\t\t: fpu sse2 avx avx2 fma\n", arch="x86_64"
)
AVX512_VNNI = describe_cpu(
    "model name\t: Intel Xeon Gold 6248 (Cascade Lake)\nflags\t\t: avx2 fma avx512f avx512_vnni\n",
    arch="x86_64",
)
AMX = describe_cpu(
    "model name\t: Intel Xeon Platinum 8480+ (Sapphire Rapids)\n"
    "flags\t\t: avx2 fma avx512f avx512_vnni avx512_bf16 amx_tile amx_int8 amx_bf16\n",
    arch="x86_64",
)
ARM_NO_BF16 = describe_cpu(
    "processor\t: 0\nFeatures\t: fp asimd asimddp\nCPU part\t: 0xd0b\n", arch="aarch64"
)
ARM_BF16 = describe_cpu(
    "processor\t: 0\nFeatures\t: fp asimd asimddp bf16 i8mm sve\nCPU part\t: 0xd40\n",
    arch="aarch64",
)
OLD_X86 = CpuInfo("Old x86", "x86_64", ("fma",))
EMULATED = "bf16: emulated on this CPU (no AVX512-BF16 or AMX), expect it slower than float32"


@pytest.mark.parametrize(
    ("cpu", "expected"),
    [
        (AVX2_ONLY, {"bf16": EMULATED}),
        (AVX512_VNNI, {"bf16": EMULATED}),
        (AMX, {}),
        (
            ARM_NO_BF16,
            {"bf16": "bf16: emulated on this CPU (no ARM BF16), expect it slower than float32"},
        ),
        (ARM_BF16, {}),
    ],
    ids=["avx2-only", "avx512-vnni", "amx", "arm-no-bf16", "arm-bf16"],
)
def test_advice_from_cpu_features(cpu, expected):
    assert scheme_advice(cpu) == expected


def test_int8_schemes_warn_on_x86_without_avx2():
    advice = scheme_advice(OLD_X86)
    assert advice["dynamic"].startswith("dynamic: this CPU lacks AVX2")
    assert advice["static"].startswith("static: this CPU lacks AVX2")
    assert "bf16" in advice


def test_a_measured_ratio_overrides_the_features():
    assert scheme_advice(AVX2_ONLY, {"bf16": 0.4})["bf16"] == (
        "bf16: emulated on this CPU (no AVX512-BF16 or AMX), 2.5x slower than float32 here "
        "(measured by speechquant doctor)"
    )
    assert "bf16" not in scheme_advice(AVX2_ONLY, {"bf16": 1.3})
    assert scheme_advice(AMX, {"dynamic": 0.8})["dynamic"] == (
        "dynamic: 1.2x slower than float32 here (measured by speechquant doctor)"
    )
    with pytest.raises(ValueError, match="measured_speedup must be positive"):
        get_scheme("bf16").advice(AMX, 0.0)


def test_plan_validation_warns_but_does_not_refuse():
    mods = toy_whisper_mods()
    tree = build_tree(mods)
    plan = Plan({"whisper.model.encoder": "bf16", "whisper.model.decoder.layers": "dynamic"})
    validate_plan(plan, tree)
    assert plan_warnings(plan, AVX2_ONLY) == [EMULATED]
    assert plan_warnings(plan, AMX) == []
    assert plan_warnings(plan, AMX, {"dynamic": 0.5}) == [
        "dynamic: 2.0x slower than float32 here (measured by speechquant doctor)"
    ]
    assert plan_warnings(Plan({TOY_HEAD: "dynamic"}), AVX2_ONLY) == []


def test_the_tree_lists_the_advice_below_the_table():
    tree = build_tree(toy_whisper_mods())
    text = format_tree(tree, max_depth=2, advice=scheme_advice(AVX2_ONLY))
    assert text.splitlines()[-1] == f"note: {EMULATED}"
    assert "note:" not in format_tree(tree, max_depth=2, advice=scheme_advice(AMX))


X86_SLOW = EngineSpeed("dynamic", "x86", 0.85, 0.81, 1.06)
ONEDNN_FAST = EngineSpeed("dynamic", "onednn", 1.62, 1.49, 1.90)
ENGINE_WARNING = (
    "dynamic: engine onednn is faster here than the plan's x86 (float32 speed onednn 1.62x "
    "[95 %: 1.49-1.90] against x86 0.85x [95 %: 0.81-1.06], measured by speechquant doctor); "
    "set the engine to onednn (--engine onednn)"
)


def test_a_plan_on_an_engine_another_clearly_beats_here_is_told_which():
    plan = Plan({TOY_HEAD: "dynamic"})
    assert plan.settings.engine == "x86"
    assert engine_warnings(plan, [X86_SLOW, ONEDNN_FAST]) == [ENGINE_WARNING]
    assert plan_warnings(plan, AMX, {}, [X86_SLOW, ONEDNN_FAST]) == [ENGINE_WARNING]
    on_onednn = Plan({TOY_HEAD: "dynamic"}, settings=QuantSettings(engine="onednn"))
    assert engine_warnings(on_onednn, [X86_SLOW, ONEDNN_FAST]) == []


def test_no_engine_warning_without_a_clear_gap_or_an_engine_scheme():
    plan = Plan({TOY_HEAD: "dynamic"})
    overlapping = EngineSpeed("dynamic", "onednn", 1.2, 1.0, 1.4)  # reaches into x86's interval
    assert engine_warnings(plan, [X86_SLOW, overlapping]) == []
    assert engine_warnings(plan, [ONEDNN_FAST]) == []  # the plan's engine was never measured
    assert engine_warnings(plan, []) == []
    other_scheme = [EngineSpeed("static", e.engine, e.speedup, e.low, e.high)
                    for e in (X86_SLOW, ONEDNN_FAST)]  # fmt: skip
    assert engine_warnings(plan, other_scheme) == []
    assert engine_warnings(Plan({"whisper.model.encoder": "bf16"}), [X86_SLOW, ONEDNN_FAST]) == []
