"""The scheme registry: ``none``, ``dynamic``, ``static``, ``bf16``."""

from speechquant.core.quantization.schemes import bf16, dynamic, none, static  # noqa: F401  (registers)
from speechquant.core.quantization.schemes.base import (
    Scheme,
    Verdict,
    all_schemes,
    get_scheme,
    register,
    scheme_names,
)

__all__ = ["Scheme", "Verdict", "all_schemes", "get_scheme", "register", "scheme_names"]
