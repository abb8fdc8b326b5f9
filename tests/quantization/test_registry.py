"""The scheme registry owns every per-scheme fact: a toy scheme registered here shows up in the
tree, plan validation, apply_plan, the size estimate, the search defaults, the CLI and advice."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from speechquant.core.cli.main import build_parser
from speechquant.core.errors import PlanError
from speechquant.core.machine import CpuInfo
from speechquant.core.quantization.apply import apply_plan
from speechquant.core.quantization.estimate import estimate_plan, summary_text
from speechquant.core.quantization.plan import Plan
from speechquant.core.quantization.schemes import (
    APPLIES,
    Scheme,
    SchemeOption,
    Verdict,
    check_settings,
    get_scheme,
    quantizing_schemes,
    register,
    scheme_advice,
    scheme_names,
    search_candidates,
    setting_choices,
    unregister,
    uses_engine,
)
from speechquant.core.quantization.settings import QuantSettings
from speechquant.core.quantization.tree import build_tree
from speechquant.core.quantization.validation import plan_warnings, validate_plan
from speechquant.core.search.plan_search import SearchSettings
from speechquant.core.search.sensitivity import SensitivitySettings

ENC = "encoder.enc"
CONVS = "encoder.wav2vec2.model.feature_extractor"
PLAIN_CPU = CpuInfo("Plain CPU", "x86_64", ("avx2", "fma"))
DOT_CPU = CpuInfo("Dot CPU", "x86_64", ("avx2", "avx512_vnni", "avx512f", "fma"))


class RoundedLinear(nn.Linear):
    """A Linear whose weights were rounded to multiples of 1/64 (the toy scheme's product)."""


class ToyScheme(Scheme):
    name = "toy"
    label = "toy (rounded)"
    description = "Rounds Linear weights to multiples of 1/64 (a test scheme)."

    def verdict(self, module: nn.Module) -> Verdict:
        if not any(isinstance(m, nn.Linear) for m in module.modules()):
            return Verdict(False, "no Linear inside for the toy scheme")
        return APPLIES

    def is_target(self, module: nn.Module, settings: QuantSettings) -> bool:
        return type(module) is nn.Linear

    def prepare(self, module: nn.Module, settings: QuantSettings) -> nn.Module:
        assert isinstance(module, nn.Linear)
        rounded = RoundedLinear(module.in_features, module.out_features, module.bias is not None)
        with torch.no_grad():
            rounded.weight.copy_(torch.round(module.weight * 64) / 64)
            if module.bias is not None:
                rounded.bias.copy_(module.bias)
        return rounded

    def kept_fraction(
        self, class_name: str, settings: QuantSettings, tied_head: bool = False
    ) -> float | None:
        return 0.5 if class_name == "Linear" else None

    def hardware_advice(self, cpu: CpuInfo) -> str | None:
        return None if cpu.int8_dot else "no dot-product instructions here"


@pytest.fixture
def toy():
    scheme = register(ToyScheme())
    yield scheme
    unregister("toy")
    assert "toy" not in scheme_names()


def test_a_registered_scheme_reaches_tree_plan_apply_and_estimate(toy, tiny_model):
    tree = build_tree(tiny_model.mods)
    assert tree[ENC].verdicts["toy"].applies
    assert not tree[CONVS].verdicts["toy"].applies
    assert tree[CONVS].verdicts["toy"].reason == "no Linear inside for the toy scheme"

    plan = Plan({ENC: "toy"})
    validate_plan(plan, tree)
    with pytest.raises(PlanError, match="does not apply to .*no Linear inside for the toy"):
        validate_plan(Plan({CONVS: "toy"}), tree)

    variant = apply_plan(tiny_model, plan)
    rounded = [m for m in variant.mods["encoder"].enc.modules() if isinstance(m, RoundedLinear)]
    linears = [m for m in tiny_model.mods["encoder"].enc.modules() if isinstance(m, nn.Linear)]
    assert rounded and len(rounded) == len(linears)
    assert not any(isinstance(m, RoundedLinear) for m in tiny_model.mods.modules())

    estimate = estimate_plan(tree, plan)
    assert estimate.schemes["toy"].entries == 1
    assert estimate.schemes["toy"].layers == len(linears)
    saved = sum(tree[p].total_bytes for p in tree.by_path if p.startswith(ENC + ".") and
                tree[p].class_name == "Linear" and not tree[p].children) / 2  # fmt: skip
    assert estimate.float_bytes - estimate.estimated_bytes == pytest.approx(saved, abs=1)
    assert "toy: 1 entry" in summary_text(estimate)


def test_a_registered_scheme_reaches_search_defaults_cli_and_advice(toy):
    assert "toy" in search_candidates() and "toy" in quantizing_schemes()
    assert "toy" in SensitivitySettings().schemes
    assert "toy" in SearchSettings(max_wer_increase=1.0).schemes
    assert not uses_engine("toy")
    args = build_parser().parse_args(["sensitivity", "SRC", "--data", "D", "--schemes", "toy"])
    assert args.schemes == ["toy"]
    assert "toy" in build_parser().parse_args(["search", "SRC", "--data", "D",
                                               "--max-wer-increase", "1"]).schemes  # fmt: skip
    assert scheme_advice(PLAIN_CPU)["toy"] == "toy: no dot-product instructions here"
    assert "toy" not in scheme_advice(DOT_CPU)
    assert plan_warnings(Plan({ENC: "toy"}), PLAIN_CPU) == ["toy: no dot-product instructions here"]


def test_an_unregistered_scheme_is_gone_from_the_cli(capsys):
    assert "toy" not in scheme_names()
    with pytest.raises(SystemExit):
        build_parser().parse_args(["sensitivity", "SRC", "--data", "D", "--schemes", "toy"])
    assert "invalid choice: 'toy'" in capsys.readouterr().err


def test_register_refuses_duplicates_non_schemes_and_unknown_settings():
    with pytest.raises(PlanError, match="already registered"):
        register(type(get_scheme("dynamic"))())
    with pytest.raises(TypeError, match="not a Scheme"):
        register(object())  # type: ignore[arg-type]

    class Nameless(Scheme):
        label = description = "x"
        verdict = ToyScheme.verdict
        prepare = ToyScheme.prepare

    with pytest.raises(TypeError, match="Nameless must set the class attribute 'name'"):
        register(Nameless())

    class NeedsAField(ToyScheme):
        name = "needs-field"
        options = (SchemeOption("toy_rounding", ("64", "128"), "rounding steps"),)

    with pytest.raises(PlanError, match="toy_rounding', which QuantSettings lacks"):
        register(NeedsAField())
    assert "needs-field" not in scheme_names()
    with pytest.raises(PlanError, match="cannot be unregistered"):
        unregister("none")


def test_each_scheme_checks_its_own_settings(tmp_path):
    with pytest.raises(PlanError, match="dynamic_dtype='int4' is not valid for the dynamic scheme"):
        Plan(settings=QuantSettings(dynamic_dtype="int4"))
    with pytest.raises(PlanError, match="dynamic_targets=.*use some of Linear, LSTM"):
        Plan(settings=QuantSettings(dynamic_targets=("Conv1d",)))
    with pytest.raises(PlanError, match="dynamic_targets=\\(\\)"):
        check_settings(QuantSettings(dynamic_targets=()))
    with pytest.raises(PlanError, match="static_qconfig='minmax' is not valid for the static"):
        SearchSettings(max_wer_increase=1.0, quant=QuantSettings(static_qconfig="minmax"))
    bad = Plan().to_dict()
    bad["settings"]["static_qconfig"] = "minmax"
    path = tmp_path / "bad.json"
    path.write_text(__import__("json").dumps(bad))
    with pytest.raises(PlanError, match=f"plan file {path}: setting static_qconfig='minmax'"):
        Plan.load(path)


def test_cli_and_gui_choices_come_from_the_schemes():
    assert setting_choices("static_qconfig") == ("tutorial", "per-channel", "histogram")
    assert setting_choices("dynamic_dtype") == ("qint8", "float16")
    with pytest.raises(PlanError, match="no registered scheme reads the setting 'engine'"):
        setting_choices("engine")
    args = build_parser().parse_args(["plan", "SRC", "--static-qconfig", "histogram"])
    assert args.static_qconfig == "histogram" and args.dynamic_dtype == "qint8"
    assert tuple(args.dynamic_targets) == QuantSettings().dynamic_targets
    with pytest.raises(SystemExit):
        build_parser().parse_args(["plan", "SRC", "--static-qconfig", "minmax"])


def test_registry_facts_of_the_built_in_schemes():
    assert scheme_names()[0] == "none"
    assert search_candidates() == ("bf16", "dynamic", "static")
    assert [s for s in scheme_names() if uses_engine(s)] == ["dynamic", "static"]
    assert [s for s in scheme_names() if get_scheme(s).supports_tied_head] == ["bf16", "dynamic"]
    assert [s for s in scheme_names() if get_scheme(s).needs_calibration] == ["static"]
    assert QuantSettings().dynamic_targets == setting_choices("dynamic_targets")


#: Files that may spell built-in scheme names: the schemes themselves, the preset catalogue (plan
#: recipes, data like a plan file), presentation (tree colours, README screenshots, the demo's
#: preset list) and a cpuinfo flag that happens to read "bf16".
NAME_LITERALS_ALLOWED = {
    "core/quantization/presets.py",
    "core/machine.py",
    "core/cli/commands.py",
    "gui/tree_model.py",
    "gui/screenshots.py",
}


def test_no_scheme_name_literal_outside_the_registry():
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    literal = re.compile(r"""["'](dynamic|static|bf16)["']""")
    found = [
        f"{path.relative_to(repo)}:{n}"
        for folder in ("core", "gui")
        for path in sorted((repo / folder).rglob("*.py"))
        if "schemes" not in path.relative_to(repo).parts
        and str(path.relative_to(repo)) not in NAME_LITERALS_ALLOWED
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if literal.search(line)
    ]
    assert found == []
