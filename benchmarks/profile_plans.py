"""Where Whisper's transcription time goes under a plan: encoder, decoder stack, head, the rest.

Usage: python benchmarks/profile_plans.py [--data manifest.csv] [--limit 6] [--rounds 2] [--threads 2]

For float32, ``all-dynamic`` and the search's plan (``all-dynamic`` plus the int8 tied head) on
demo:whisper-tiny-en, every utterance is transcribed with timers around the Whisper module's
``forward_encoder`` (mel features + encoder), the decoder stack (``model.decoder``, once per
step) and ``forward_decoder`` (stack + output projection): the head is ``forward_decoder`` less
the stack, and the rest of ``transcribe`` is the greedy searcher's own Python work (token
bookkeeping, suppression, stopping). Variants are interleaved utterance by utterance, in one
process; shares of each variant's own total are what to read on a loaded machine.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from speechquant.core.data.datasets import iter_loaded, open_dataset  # noqa: E402
from speechquant.core.machine import this_machine  # noqa: E402
from speechquant.core.model.loaded import LoadedModel  # noqa: E402
from speechquant.core.paths import shared_speech_dir  # noqa: E402
from speechquant.core.quantization.apply import apply_plan  # noqa: E402
from speechquant.core.quantization.presets import make_preset  # noqa: E402
from speechquant.core.quantization.tree import build_tree  # noqa: E402
from speechquant.core.sources import open_model  # noqa: E402

STAGES = ("encoder", "decoder stack", "tied head", "searcher (Python)")


class StageTimer:
    """Accumulates seconds per stage from wrapped methods and module hooks."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.steps = 0
        self._started: list[float] = []

    def wrap(self, owner: Any, method: str, stage: str) -> None:
        original: Callable[..., Any] = getattr(owner, method)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - start

        setattr(owner, method, timed)

    def hook(self, module: nn.Module, stage: str) -> None:
        def before(*_: Any) -> None:
            self._started.append(time.perf_counter())

        def after(*_: Any) -> None:
            self.seconds[stage] += time.perf_counter() - self._started.pop()
            self.steps += 1

        module.register_forward_pre_hook(before)
        module.register_forward_hook(after)


def instrument(model: LoadedModel) -> StageTimer:
    timer = StageTimer()
    whispers = {id(m): m for m in model.mods.modules() if type(m).__name__ == "Whisper"}
    for whisper in whispers.values():
        timer.wrap(whisper, "forward_encoder", "encoder")
        timer.wrap(whisper, "forward_decoder", "forward_decoder")
        timer.hook(whisper.model.decoder, "decoder stack")
    return timer


def shares(timer: StageTimer, total: float) -> dict[str, float]:
    stack = timer.seconds["decoder stack"]
    return {
        "encoder": timer.seconds["encoder"],
        "decoder stack": stack,
        "tied head": timer.seconds["forward_decoder"] - stack,
        "searcher (Python)": total - timer.seconds["encoder"] - timer.seconds["forward_decoder"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    speech = shared_speech_dir()
    parser.add_argument("--data", default=str(speech / "manifest.csv") if speech else "demo")
    parser.add_argument("--limit", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = open_model("demo:whisper-tiny-en")
    tree = build_tree(model.mods)
    best = make_preset("all-dynamic", tree)
    best.entries["whisper.model.decoder.embed_tokens"] = "dynamic"
    variants = {
        "float32": model,
        "all-dynamic": apply_plan(model, make_preset("all-dynamic", tree)),
        "all-dynamic + int8 head": apply_plan(model, best),
    }
    dataset = open_dataset(args.data)
    dataset = type(dataset)(
        utterances=[u for u in dataset.utterances if u.audio_path.parent.name == "ljspeech"],
        source=dataset.source,
        form=dataset.form,
    ).first(args.limit)
    waves = [wav for _, wav in iter_loaded(dataset, model.sample_rate)]
    audio = sum(len(w) for w in waves) / model.sample_rate
    timers = {name: instrument(variant) for name, variant in variants.items()}
    totals = dict.fromkeys(variants, 0.0)
    for variant in variants.values():
        variant.transcribe(waves[0])  # warm-up, then reset the counters
    for timer in timers.values():
        timer.seconds.clear()
        timer.steps = 0
    for _ in range(args.rounds):
        for wav in waves:
            for name, variant in variants.items():
                start = time.perf_counter()
                variant.transcribe(wav)
                totals[name] += time.perf_counter() - start
    machine = this_machine(args.threads)
    print(f"{machine.label()}; {machine.cpu.summary()}; load average {os.getloadavg()[0]:.2f}")
    print(f"{len(waves)} LJSpeech utterances ({audio:.0f} s), {args.rounds} interleaved rounds")
    print("| variant | RTF | " + " | ".join(STAGES) + " | decoder steps | ms per step |")
    print("|---" * (len(STAGES) + 4) + "|")
    for name, timer in timers.items():
        parts = shares(timer, totals[name])
        cells = [f"{100 * parts[s] / totals[name]:.0f} %" for s in STAGES]
        per_step = 1000 * (parts["decoder stack"] + parts["tied head"]) / max(timer.steps, 1)
        rtf = totals[name] / (audio * args.rounds)
        print(
            f"| {name} | {rtf:.4f} | " + " | ".join(cells) + f" | {timer.steps} | {per_step:.2f} |"
        )


if __name__ == "__main__":
    main()
