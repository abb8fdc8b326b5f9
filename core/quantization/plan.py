"""Quantization plans: module path -> scheme, inherited down the tree, versioned JSON on disk."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from speechquant.core.errors import PlanError
from speechquant.core.quantization.schemes import FLOAT_SCHEME, check_settings, get_scheme
from speechquant.core.quantization.settings import QuantSettings

PLAN_FORMAT = 1


@dataclass
class Plan:
    """Which scheme each module gets.

    ``entries`` maps dotted module paths (relative to the model's ``mods``) to scheme names. A
    scheme applies to the whole subtree of its path unless a deeper entry says otherwise; ``none``
    keeps a subtree in float.
    """

    entries: dict[str, str] = field(default_factory=dict)
    settings: QuantSettings = field(default_factory=QuantSettings)
    name: str = "custom"

    def __post_init__(self) -> None:
        for path, scheme in self.entries.items():
            if not isinstance(path, str) or not path or path != path.strip("."):
                raise PlanError(f"plan path '{path}' is not a dotted module path")
            get_scheme(scheme)
        check_settings(self.settings)

    def effective(self, path: str) -> tuple[str, str | None]:
        """The scheme that governs ``path`` and the entry path it comes from (None: default)."""
        probe = path
        while True:
            if probe in self.entries:
                return self.entries[probe], probe
            if "." not in probe:
                return FLOAT_SCHEME, None
            probe = probe.rsplit(".", 1)[0]

    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for scheme in self.entries.values():
            counts[scheme] = counts.get(scheme, 0) + 1
        return counts

    def is_float(self) -> bool:
        """Whether the plan leaves the model as it is (every entry float, the native decoder step)."""
        return self.settings.decoder_step == "native" and all(
            scheme == FLOAT_SCHEME for scheme in self.entries.values()
        )

    def to_dict(self) -> dict[str, Any]:
        settings = asdict(self.settings)
        settings["dynamic_targets"] = list(self.settings.dynamic_targets)
        if (
            settings["decoder_step"] == "native"
        ):  # plans written before the setting stay as they were
            del settings["decoder_step"]
        return {
            "format": "speechquant-plan",
            "version": PLAN_FORMAT,
            "name": self.name,
            "entries": dict(sorted(self.entries.items())),
            "settings": settings,
        }

    @classmethod
    def from_dict(cls, data: Any, origin: str = "plan") -> Plan:
        if not isinstance(data, dict) or data.get("format") != "speechquant-plan":
            raise PlanError(
                f'{origin} is not a speechquant plan (missing "format": "speechquant-plan")'
            )
        version = data.get("version")
        if version != PLAN_FORMAT:
            raise PlanError(
                f"{origin} has plan format version {version!r}; this speechquant reads version {PLAN_FORMAT}"
            )
        unknown = set(data) - {"format", "version", "name", "entries", "settings"}
        if unknown:
            raise PlanError(f"{origin} has unknown keys {sorted(unknown)}; remove them")
        entries = data.get("entries", {})
        if not isinstance(entries, dict) or not all(isinstance(v, str) for v in entries.values()):
            raise PlanError(f"{origin}: 'entries' must map module paths to scheme names")
        raw_settings = data.get("settings", {})
        if not isinstance(raw_settings, dict):
            raise PlanError(f"{origin}: 'settings' must be an object")
        known = set(QuantSettings.__dataclass_fields__)
        extra = set(raw_settings) - known
        if extra:
            raise PlanError(
                f"{origin}: unknown settings {sorted(extra)}; known are {sorted(known)}"
            )
        try:
            return cls(
                entries=dict(entries),
                settings=QuantSettings(**raw_settings),
                name=str(data.get("name", "custom")),
            )
        except PlanError as exc:
            raise PlanError(f"{origin}: {exc}") from None

    def save(self, path: Path) -> None:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path | str) -> Plan:
        path = Path(path)
        if path.is_dir():
            raise PlanError(f"plan file {path} is a folder; give the plan's JSON file")
        if not path.is_file():
            raise PlanError(
                f"plan file {path} does not exist; write one with 'speechquant plan SOURCE --preset NAME -o {path}'"
            )
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PlanError(
                f"plan file {path} is not valid JSON ({exc}); fix or regenerate it"
            ) from None
        return cls.from_dict(data, origin=f"plan file {path}")
