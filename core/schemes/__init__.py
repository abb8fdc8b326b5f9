"""The scheme registry: ``none``, ``dynamic``, ``static``, ``bf16``."""

from . import bf16, simple, static  # noqa: F401  (registers the schemes)
from .base import Scheme, Verdict, all_schemes, get_scheme, register, scheme_names

__all__ = ["Scheme", "Verdict", "all_schemes", "get_scheme", "register", "scheme_names"]
