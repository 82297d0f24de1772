"""``--perms`` rules (``REGEX=MODE[:UID:GID]``) as data. Their grammar is the option table's
(:data:`layerforge.option_rules.PERM_GRAMMAR`), which the Pants field reads too;
``tests/test_nix_jobs.py`` runs both readers on the same cases.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from layerforge.errors import LayerforgeError, UsageError
from layerforge.option_rules import PERM_GRAMMAR

_PERM = re.compile(PERM_GRAMMAR)


@dataclass(frozen=True)
class PermSpec:
    """``REGEX=MODE[:UID:GID]``: mode/owner for the paths the regex fully matches. ``owner``
    and ``group`` hold names given instead of ids (``:app:app``) until the plan resolves them
    against the image's user."""

    pattern: str
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    owner: str | None = None
    group: str | None = None

    def to_json(self) -> list[object]:
        if self.owner is not None or self.group is not None:
            raise LayerforgeError(f"--perms: {self.to_arg()!r} names an owner that was never resolved")
        return [self.pattern, self.mode, self.uid, self.gid]

    @classmethod
    def from_json(cls, v: list[object]) -> PermSpec:
        pattern, mode, uid, gid = v
        return cls(str(pattern), _opt_int(mode), _opt_int(uid), _opt_int(gid))

    def to_arg(self) -> str:
        """The rule as ``--perms`` takes it (:func:`parse_perms` reads it back to this rule)."""
        s = f"{self.pattern}="
        if self.mode is not None:
            s += f"{self.mode:04o}"
        uid = self.owner if self.owner is not None else self.uid
        gid = self.group if self.group is not None else self.gid
        if uid is not None:
            s += f":{uid}:{gid if gid is not None else uid}"
        return s


def _opt_int(v: object) -> int | None:
    return None if v is None else int(str(v))


def parse_perms(values: list[str], *, names: bool = True) -> tuple[PermSpec, ...]:
    """``REGEX=MODE[:OWNER:GROUP]`` rules; owner and group are ids, or (with ``names``) the
    names of the image's user and group, which the plan resolves."""
    out = []
    for v in values:
        m = _PERM.match(v)
        if not m:
            raise UsageError("--perms", f"{v!r} is not REGEX=MODE[:UID:GID] (e.g. '/nix/store/.*-app/bin/.*=0755')")
        uid, gid = m.group("uid"), m.group("gid")
        if not names and not (uid is None or (uid.isdigit() and gid.isdigit())):
            raise UsageError("--perms", f"{v!r}: give numeric ids here (nix-plan resolves names)")
        out.append(
            PermSpec(
                pattern=m.group("re"),
                mode=int(m.group("mode"), 8) if m.group("mode") else None,
                uid=int(uid) if uid is not None and uid.isdigit() else None,
                gid=int(gid) if gid is not None and gid.isdigit() else None,
                owner=uid if uid is not None and not uid.isdigit() else None,
                group=gid if gid is not None and not gid.isdigit() else None,
            )
        )
    return tuple(out)
