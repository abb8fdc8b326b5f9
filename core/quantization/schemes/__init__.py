"""The scheme registry: every module of this package is imported, and each scheme module registers.

A new scheme is one new module here that subclasses :class:`Scheme` and calls :func:`register`.
"""

import importlib
import pkgutil

from speechquant.core.quantization.schemes.base import (
    APPLIES,
    FLOAT_SCHEME,
    Produced,
    Scheme,
    SchemeOption,
    Verdict,
    all_schemes,
    check_settings,
    get_scheme,
    quantizing_schemes,
    register,
    scheme_advice,
    scheme_names,
    scheme_options,
    search_candidates,
    setting_choices,
    unregister,
    uses_engine,
)

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")

__all__ = [
    "APPLIES",
    "FLOAT_SCHEME",
    "Produced",
    "Scheme",
    "SchemeOption",
    "Verdict",
    "all_schemes",
    "check_settings",
    "get_scheme",
    "quantizing_schemes",
    "register",
    "scheme_advice",
    "scheme_names",
    "scheme_options",
    "search_candidates",
    "setting_choices",
    "unregister",
    "uses_engine",
]
