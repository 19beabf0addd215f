"""The ``immune:`` section of the configuration, validated.

The seed's fields and defaults, plus the threat-memory limits::

    immune:
      enabled: true               # false: no monitoring, status is empty
      warn_only: true             # false: enforce (suspend anomalous processes with SIGPAUSE)
      deviation_threshold: 2.0    # standard deviations from the baseline (> 0)
      min_samples: 5              # finished runs of a template before detection starts (>= 2)
      min_migration_similarity: 0.5   # 0..1, read by the migration planner
      threat_ttl_days: 30         # forget a threat signature not seen for this long (0: never)
      max_threats: 500            # keep at most this many signatures (0: no cap)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from rnix_actors.config import Config
from rnix_actors.errors import ConfigError

FIELDS = (
    "enabled",
    "warn_only",
    "deviation_threshold",
    "min_samples",
    "min_migration_similarity",
    "threat_ttl_days",
    "max_threats",
)


@attrs.frozen
class ImmuneConfig:
    """Validated immune settings; the defaults are the seed document's."""

    enabled: bool = True
    warn_only: bool = True
    deviation_threshold: float = attrs.field(default=2.0, validator=attrs.validators.gt(0.0))
    min_samples: int = attrs.field(default=5, validator=attrs.validators.ge(2))
    min_migration_similarity: float = attrs.field(
        default=0.5, validator=[attrs.validators.ge(0.0), attrs.validators.le(1.0)]
    )
    threat_ttl_days: int = attrs.field(default=30, validator=attrs.validators.ge(0))
    max_threats: int = attrs.field(default=500, validator=attrs.validators.ge(0))

    @property
    def mode(self) -> str:
        """``disabled``, ``warn-only`` or ``enforce`` (the status ``Mode:`` line)."""
        if not self.enabled:
            return "disabled"
        return "warn-only" if self.warn_only else "enforce"


def immune_config_from(config: Config) -> ImmuneConfig:
    """Validate ``config.immune`` into an `ImmuneConfig`.

    Raises `ConfigError` naming the ``file:LINE`` that set the bad value, the field
    (``immune.min_samples``) and the allowed range; unknown keys list the allowed ones.
    """
    raw: Mapping[str, Any] = config.immune
    for key in raw:
        if key not in FIELDS:
            raise ConfigError(
                config.origin(f"immune.{key}"),
                f"immune.{key}",
                "unknown key",
                "allowed keys: " + ", ".join(FIELDS),
            )
    values: dict[str, Any] = {}
    for key, value in raw.items():
        values[key] = _check(config, key, value)
    return ImmuneConfig(**values)


_BOOLS = ("enabled", "warn_only")
# field -> (type, minimum, exclusive minimum, maximum, text of the allowed range)
_NUMBERS: dict[str, tuple[type, float, bool, float | None, str]] = {
    "deviation_threshold": (float, 0.0, True, None, "a number > 0"),
    "min_samples": (int, 2, False, None, "an integer >= 2"),
    "min_migration_similarity": (float, 0.0, False, 1.0, "a number from 0 to 1"),
    "threat_ttl_days": (int, 0, False, None, "an integer >= 0 (0: never expire)"),
    "max_threats": (int, 0, False, None, "an integer >= 0 (0: no cap)"),
}


def _check(config: Config, key: str, value: Any) -> Any:
    field = f"immune.{key}"
    source = config.origin(field)
    if key in _BOOLS:
        if not isinstance(value, bool):
            raise ConfigError(source, field, f"must be true or false (got {value!r})")
        return value
    kind, minimum, exclusive, maximum, allowed = _NUMBERS[key]
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if not numeric or (kind is int and not isinstance(value, int)):
        raise ConfigError(source, field, f"must be {allowed} (got {value!r})")
    too_low = value <= minimum if exclusive else value < minimum
    if too_low or (maximum is not None and value > maximum):
        raise ConfigError(source, field, f"must be {allowed} (got {value!r})")
    return kind(value)
