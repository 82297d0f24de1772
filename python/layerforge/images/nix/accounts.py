"""The account a non-root image runs as (``--user NAME[:GROUP]``, ``--uid``, ``--gid``).

An image with no /etc/passwd gets one in its root layer: root and the user, a matching
/etc/group, and the user's home directory, owned by the user. An image that has one (from a
base image or a copy-to-root path) must already list the user, with the ids asked for; it is
never rewritten. A numeric user (``1000``, ``1000:1000``) needs no account and gets none.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from layerforge.errors import UsageError
from layerforge.images.nix.copy_to_root import RootEntry
from layerforge.images.nix.image_view import ImageView
from layerforge.images.nix.perms import PermSpec

DEFAULT_UID = 1000
SHELL = "/bin/sh"
HOME_MODE = 0o755
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}\Z")
#: (uid_t)-1 means "no id" to the kernel.
MAX_ID = 2**32 - 2


@dataclass(frozen=True)
class Account:
    user: str
    uid: int
    group: str
    gid: int

    @property
    def home(self) -> str:
        return "/root" if self.user == "root" else f"/home/{self.user}"

    def passwd(self) -> bytes:
        rows = [f"root:x:0:0:root:/root:{SHELL}"]
        if self.user != "root":
            rows.append(f"{self.user}:x:{self.uid}:{self.gid}::{self.home}:{SHELL}")
        return "".join(f"{r}\n" for r in rows).encode()

    def group_file(self) -> bytes:
        rows = ["root:x:0:"]
        if self.group != "root":
            rows.append(f"{self.group}:x:{self.gid}:")
        return "".join(f"{r}\n" for r in rows).encode()

    def home_pattern(self) -> str:
        """A perm rule pattern matching exactly the home directory (names hold no regex
        metacharacter other than '.')."""
        return self.home.replace(".", "[.]")

    def to_arg(self) -> str:
        return f"{self.user}:{self.uid}:{self.group}:{self.gid}"

    @classmethod
    def from_arg(cls, value: str, option: str = "--account") -> Account:
        parts = value.split(":")
        if len(parts) != 4 or not all(p.isdigit() for p in parts[1::2]):
            raise UsageError(option, f"{value!r} is not USER:UID:GROUP:GID")
        account = cls(parts[0], int(parts[1]), parts[2], int(parts[3]))
        _check_names(account.user, account.group, option)
        _check_ids(account, option)
        return account

    def to_json(self) -> dict[str, Any]:
        return {"user": self.user, "uid": self.uid, "group": self.group, "gid": self.gid}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Account:
        return cls(str(d["user"]), int(d["uid"]), str(d["group"]), int(d["gid"]))


@dataclass(frozen=True)
class ImageUser:
    """The ids the image's user has, and whether the root layer has to create the account."""

    account: Account
    create: bool


def plan_user(user: str | None, uid: int | None, gid: int | None, view: ImageView) -> ImageUser | None:
    """The account for ``--user`` in the image ``view`` shows, or None for no user or a
    numeric one. Usage errors name the option and what is wrong."""
    name, _, group = (user or "").partition(":")
    if not name or name.isdigit():
        if uid is not None or gid is not None:
            raise UsageError("--uid" if uid is not None else "--gid", "needs --user NAME (the account to give the ids)")
        return None
    _check_names(name, group or None, "--user")
    passwd = view.read("/etc/passwd")
    if passwd is not None:
        return ImageUser(_listed(name, group or None, (uid, gid), passwd, view), create=False)
    for path in ("/etc/passwd", "/etc/group"):
        if view.resolve(path) is not None:
            raise UsageError("--user", f"the image has {path} but no readable /etc/passwd to find {name!r} in")
    if name == "root":
        uid = 0 if uid is None else uid
    uid = DEFAULT_UID if uid is None else uid
    group = group or name
    gid = (0 if group == "root" else uid) if gid is None else gid
    account = Account(name, uid, group, gid)
    _check_ids(account, "--uid")
    return ImageUser(account, create=True)


def _check_names(user: str, group: str | None, option: str) -> None:
    for what, value in (("user", user), ("group", group)):
        if value is not None and not _NAME.match(value):
            raise UsageError(option, f"{value!r} is not a {what} name (letters, digits, '_', '.', '-'; 32 at most)")


def _check_ids(account: Account, option: str) -> None:
    for what, value in (("uid", account.uid), ("gid", account.gid)):
        if not 0 <= value <= MAX_ID:
            raise UsageError(f"--{what}", f"{value} is outside 0..{MAX_ID}")
    if (account.user == "root") != (account.uid == 0):
        raise UsageError("--uid", f"uid {account.uid} for user {account.user!r}: uid 0 is root's and only root's")
    if (account.group == "root") != (account.gid == 0):
        raise UsageError("--gid", f"gid {account.gid} for group {account.group!r}: gid 0 is root's and only root's")


def _rows(data: bytes) -> dict[str, list[str]]:
    """An /etc/passwd-style database by name (first entry of a name wins, as getpwnam)."""
    rows: dict[str, list[str]] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[0] and not line.startswith("#") and fields[2].isdigit():
            rows.setdefault(fields[0], fields)
    return rows


def _listed(
    name: str, group: str | None, ids: tuple[int | None, int | None], passwd: bytes, view: ImageView
) -> Account:
    uid, gid = ids
    row = _rows(passwd).get(name)
    if row is None:
        raise UsageError("--user", f"{name!r} is not in the image's /etc/passwd (from its base image or copy-to-root)")
    found_uid, found_gid = int(row[2]), int(row[3]) if row[3].isdigit() else 0
    if uid is not None and uid != found_uid:
        raise UsageError("--uid", f"{uid} is not the uid of {name!r} in the image's /etc/passwd ({found_uid})")
    group_name = group
    if group is not None:
        grow = _rows(view.read("/etc/group") or b"").get(group)
        if grow is None:
            raise UsageError("--user", f"group {group!r} is not in the image's /etc/group")
        found_gid = int(grow[2])
    else:
        group_name = next((g for g, r in _rows(view.read("/etc/group") or b"").items() if int(r[2]) == found_gid), "")
    if gid is not None and gid != found_gid:
        raise UsageError("--gid", f"{gid} is not the gid of {group or name!r} in the image ({found_gid})")
    return Account(name, found_uid, group_name or str(found_gid), found_gid)


def add_account_entries(entries: dict[str, RootEntry], account: Account) -> None:
    """/etc/passwd, /etc/group and the home directory in the root layer's entries (copy-to-root
    may already have /etc as a directory; anything else in their way is a conflict)."""
    home = account.home.lstrip("/")
    wanted = [RootEntry(d, "dir", provider="--user") for d in ("etc", posixpath.dirname(home)) if d]
    wanted += [
        RootEntry(home, "dir", provider="--user"),
        RootEntry("etc/passwd", "file", provider="--user", data=account.passwd()),
        RootEntry("etc/group", "file", provider="--user", data=account.group_file()),
    ]
    for entry in wanted:
        existing = entries.get(entry.dest)
        if existing is None:
            entries[entry.dest] = entry
        elif existing.kind != "dir" or entry.kind != "dir":
            raise UsageError("--user", f"/{entry.dest} for user {account.user!r} conflicts with {existing.provider}")


def resolve_perm_owners(perms: tuple[PermSpec, ...], user: ImageUser | None) -> tuple[PermSpec, ...]:
    """``--perms`` rules with owners given by name (``REGEX=MODE:app:app``) made numeric: the
    names must be the image's user and group, or root."""
    out = []
    for p in perms:
        if p.owner is None and p.group is None:
            out.append(p)
            continue
        ids = {"root": 0}
        if user is not None:
            ids = {**ids, user.account.user: user.account.uid}
        groups = {"root": 0, **({user.account.group: user.account.gid} if user is not None else {})}
        uid, gid = p.uid, p.gid
        if p.owner is not None:
            if p.owner not in ids:
                raise UsageError("--perms", f"{p.to_arg()!r}: {p.owner!r} is not the image's user (--user) or root")
            uid = ids[p.owner]
        if p.group is not None:
            if p.group not in groups:
                raise UsageError("--perms", f"{p.to_arg()!r}: {p.group!r} is not the image's group or root")
            gid = groups[p.group]
        out.append(replace(p, uid=uid, gid=gid, owner=None, group=None))
    return tuple(out)
