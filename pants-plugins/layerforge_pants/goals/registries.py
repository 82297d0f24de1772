"""Registry aliases from ``[layerforge.registries]`` and how a target's ``registries`` field
resolves against them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pants.util.frozendict import FrozenDict


class RegistryError(ValueError):
    pass


def _bool(value: Any, alias: str, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise RegistryError(f"[layerforge.registries.{alias}].{key} must be true or false, got {value!r}")


@dataclass(frozen=True)
class Registry:
    alias: str
    address: str
    default: bool = False
    insecure: bool = False
    skip_push: bool = False
    repository: str | None = None


@dataclass(frozen=True)
class Registries:
    by_alias: FrozenDict[str, Registry]

    @classmethod
    def from_dict(cls, table: Mapping[str, Any]) -> Registries:
        out = {}
        for alias, opts in table.items():
            if not isinstance(opts, Mapping) or not opts.get("address"):
                raise RegistryError(f"[layerforge.registries.{alias}] needs an `address`")
            out[alias] = Registry(
                alias=alias,
                address=str(opts["address"]),
                default=_bool(opts.get("default", False), alias, "default"),
                insecure=_bool(opts.get("insecure", False), alias, "insecure"),
                skip_push=_bool(opts.get("skip_push", False), alias, "skip_push"),
                repository=opts.get("repository"),
            )
        return cls(FrozenDict(out))

    def resolve(self, values: Iterable[str], where: str) -> tuple[Registry, ...]:
        """``@alias`` or a literal address each; none given means every default registry."""
        values = tuple(values)
        if not values:
            return tuple(r for r in self.by_alias.values() if r.default)
        out = []
        for v in values:
            if v.startswith("@"):
                reg = self.by_alias.get(v[1:])
                if reg is None:
                    known = ", ".join(f"@{a}" for a in sorted(self.by_alias)) or "none are configured"
                    raise RegistryError(f"{where}: unknown registry alias {v!r} (known: {known})")
                out.append(reg)
            else:
                known_address = next((r for r in self.by_alias.values() if r.address == v), None)
                out.append(known_address or Registry(alias="", address=v))
        return tuple(out)
