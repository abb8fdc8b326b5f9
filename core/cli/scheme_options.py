"""Command-line options for a plan's settings: those schemes read (from the scheme registry) and
the decoder step."""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any

from speechquant.core.quantization.schemes import quantizing_schemes, scheme_options
from speechquant.core.quantization.settings import DECODER_STEPS, QuantSettings

DECODER_STEP_HELP = (
    "how the decoder steps after the first run: native (the searcher's own code) or scripted "
    "(one TorchScript module; Whisper greedy search only)"
)


def _flag(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def add_scheme_options(parser: argparse.ArgumentParser) -> None:
    """One option per scheme setting (``--dynamic-dtype``, ``--static-qconfig`` …), and
    ``--decoder-step``."""
    defaults: dict[str, Any] = {f.name: f.default for f in fields(QuantSettings)}
    parser.add_argument(
        "--decoder-step",
        choices=DECODER_STEPS,
        default=defaults["decoder_step"],
        help=f"{DECODER_STEP_HELP} (default {defaults['decoder_step']})",
    )
    for scheme, option in scheme_options():
        default = defaults[option.field]
        if option.multiple:
            parser.add_argument(
                _flag(option.field),
                nargs="+",
                choices=option.choices,
                default=list(default),
                help=f"{scheme.name}: {option.help} (default: {' '.join(default)})",
            )
        else:
            parser.add_argument(
                _flag(option.field),
                choices=option.choices,
                default=default,
                help=f"{scheme.name}: {option.help} (default {default})",
            )


def add_schemes_choice(parser: argparse.ArgumentParser, default: tuple[str, ...]) -> None:
    """``--schemes``: any registered quantizing scheme, ``default`` when not given."""
    parser.add_argument(
        "--schemes",
        nargs="+",
        choices=quantizing_schemes(),
        default=list(default),
        help=f"schemes to try per unit (default: {' '.join(default)})",
    )


def scheme_settings(args: argparse.Namespace, engine: str = "x86") -> QuantSettings:
    """The :class:`QuantSettings` the options of :func:`add_scheme_options` describe."""
    values = {option.field: getattr(args, option.field) for _, option in scheme_options()}
    return QuantSettings(engine=engine, decoder_step=args.decoder_step, **values)
