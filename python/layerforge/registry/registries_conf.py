"""containers-registries.conf(5), the part a pull and a push need: ``[[registry]]`` entries
(``prefix``, ``location``, ``insecure``, ``blocked``) with their ``[[registry.mirror]]`` s
(``location``, ``insecure``, ``pull-from-mirror``), and the v1 lists ``[registries.insecure]``
and ``[registries.block]``.

The files are ``$CONTAINERS_REGISTRIES_CONF``, else ``~/.config/containers/registries.conf``
when it exists, else ``/etc/containers/registries.conf``; then the drop-ins
``/etc/containers/registries.conf.d/*.conf`` and ``~/.config/containers/registries.conf.d/*.conf``
in name order, whose entries replace those of the same prefix. An image matches the entry of
the longest prefix (``host[:port][/path]`` on a component boundary, or ``*.domain``). Mirrors
serve pulls only, tried in order before the entry's location; what any of them sends is
checked against its digest as the registry's own answers are.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from layerforge.errors import LayerforgeError, LayoutError
from layerforge.registry.reference import DOCKER_HUB, ImageName, valid_repository
from layerforge.trust.blobs import BlobMissing, read_document
from layerforge.trust.origins import valid_registry
from layerforge.trust.text import shown
from layerforge.trust.toml_subset import TomlRefused, loads

MAX_FILE = 1 << 20
PULL_FROM = ("all", "digest-only", "tag-only")
_HUB_NAMES = frozenset({DOCKER_HUB, "docker.io", "index.docker.io"})


class ConfRefused(LayerforgeError):
    """A registries.conf that cannot be used; the message names the file."""


@dataclass(frozen=True)
class Mirror:
    location: str
    insecure: bool = False
    pull_from: str = "all"


@dataclass(frozen=True)
class Entry:
    prefix: str
    location: str
    insecure: bool = False
    blocked: bool = False
    mirrors: tuple[Mirror, ...] = ()
    source: str = ""


@dataclass(frozen=True)
class Source:
    """Where a pull may fetch an image from: the name there, and whether it is insecure."""

    name: ImageName
    insecure: bool
    mirror: bool


def files(environ: Mapping[str, str] | None = None) -> list[Path]:
    env = os.environ if environ is None else environ
    home = Path(env.get("HOME") or os.path.expanduser("~"))
    user = home / ".config" / "containers"
    if env.get("CONTAINERS_REGISTRIES_CONF"):
        main = Path(env["CONTAINERS_REGISTRIES_CONF"])
    else:
        mine = user / "registries.conf"
        main = mine if mine.is_file() else Path("/etc/containers/registries.conf")
    out = [main]
    for directory in (Path("/etc/containers/registries.conf.d"), user / "registries.conf.d"):
        try:
            out += sorted(p for p in directory.iterdir() if p.name.endswith(".conf") and p.is_file())
        except OSError:
            continue
    return out


def _read(path: Path) -> dict[str, object] | None:
    try:
        data = read_document(path, f"'{path}'", limit=MAX_FILE, follow=True)
    except BlobMissing:
        return None
    except LayoutError as e:  # not a regular file, unreadable, too large
        raise ConfRefused(str(e)) from None
    try:
        return loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfRefused(f"'{path}' is not UTF-8 text") from None
    except TomlRefused as e:
        raise ConfRefused(f"'{path}': {e}") from None


def _field(table: Mapping[str, object], key: str, kind: type, default: object, where: str) -> object:
    value = table.get(key, default)
    if not isinstance(value, kind):
        raise ConfRefused(f"{where}: {key!r} must be a {kind.__name__}, not {shown(repr(value), limit=60)}")
    return value


def _mirror(table: object, where: str) -> Mirror:
    if not isinstance(table, dict):
        raise ConfRefused(f"{where}: [[registry.mirror]] must be a table")
    location = str(_field(table, "location", str, "", where))
    pull_from = str(_field(table, "pull-from-mirror", str, "all", where))
    if not location or pull_from not in PULL_FROM:
        raise ConfRefused(f"{where}: a mirror needs a location and pull-from-mirror one of {', '.join(PULL_FROM)}")
    return Mirror(location, bool(_field(table, "insecure", bool, False, where)), pull_from)


def _entry(table: object, path: Path) -> Entry:
    where = f"'{path}'"
    if not isinstance(table, dict):
        raise ConfRefused(f"{where}: [[registry]] must be a table")
    location = str(_field(table, "location", str, "", where))
    prefix = str(_field(table, "prefix", str, "", where)) or location
    if not prefix:
        raise ConfRefused(f"{where}: a [[registry]] needs a prefix or a location")
    mirrors = _field(table, "mirror", list, [], where)
    assert isinstance(mirrors, list)
    by_digest = bool(_field(table, "mirror-by-digest-only", bool, False, where))
    parsed = tuple(_mirror(m, where) for m in mirrors)
    if by_digest:
        parsed = tuple(Mirror(m.location, m.insecure, "digest-only") for m in parsed)
    return Entry(
        prefix=prefix,
        location=location,
        insecure=bool(_field(table, "insecure", bool, False, where)),
        blocked=bool(_field(table, "blocked", bool, False, where)),
        mirrors=parsed,
        source=str(path),
    )


def _v1(doc: Mapping[str, object], path: Path) -> list[Entry]:
    lists = doc.get("registries")
    if not isinstance(lists, dict):
        return []
    out = []
    for kind in ("insecure", "block"):
        table = lists.get(kind) or {}
        hosts = _field(table, "registries", list, [], f"'{path}'") if isinstance(table, dict) else []
        assert isinstance(hosts, list)
        for host in hosts:
            if not isinstance(host, str) or not host:
                raise ConfRefused(f"'{path}': [registries.{kind}] lists {shown(repr(host), limit=60)}, not a registry")
            out.append(Entry(host, host, insecure=kind == "insecure", blocked=kind == "block", source=str(path)))
    return out


def load(environ: Mapping[str, str] | None = None) -> list[Entry]:
    """Every entry of the registries.conf files, later files replacing earlier prefixes."""
    entries: dict[str, Entry] = {}
    for path in files(environ):
        doc = _read(path)
        if doc is None:
            continue
        tables = doc.get("registry", [])
        if not isinstance(tables, list):
            raise ConfRefused(f"'{path}': 'registry' must be [[registry]] tables")
        for entry in [*_v1(doc, path), *(_entry(t, path) for t in tables)]:
            entries[entry.prefix] = entry
    return list(entries.values())


def _reference(name: ImageName) -> str:
    host = "docker.io" if name.registry in _HUB_NAMES else name.registry
    return f"{host}/{name.repository}"


def _matches(prefix: str, reference: str) -> bool:
    if prefix.startswith("*."):
        host = reference.split("/", 1)[0].split(":", 1)[0]
        return host.endswith(prefix[1:])
    return reference == prefix or reference.startswith(prefix + "/")


def find(entries: list[Entry], name: ImageName) -> Entry | None:
    """The entry of the longest prefix that ``name`` matches."""
    reference = _reference(name)
    found = [e for e in entries if _matches(e.prefix, reference)]
    return max(found, key=lambda e: len(e.prefix), default=None)


def _rewritten(entry: Entry, name: ImageName, location: str) -> ImageName:
    """``name`` with the entry's prefix replaced by ``location``."""
    reference = _reference(name)
    if entry.prefix.startswith("*."):  # the prefix is the host: a mirror stands for it
        moved = f"{location}/{reference.split('/', 1)[1]}"
    else:
        moved = location + reference[len(entry.prefix) :]
    registry, _, repository = moved.partition("/")
    if registry == "docker.io":
        registry = DOCKER_HUB
    if not valid_registry(registry) or not valid_repository(repository):
        raise ConfRefused(
            f"'{entry.source}': {shown(location, limit=200)!r} makes {name} "
            f"{shown(moved, limit=200)!r}, not an image name"
        )
    return ImageName(registry, repository, name.tag, name.digest)


def blocked_error(entry: Entry, name: ImageName) -> ConfRefused:
    return ConfRefused(f"{name} is blocked by '{entry.source}' (prefix {entry.prefix!r}, blocked = true)")


def pull_sources(name: ImageName, entries: list[Entry]) -> list[Source]:
    """Where to pull ``name`` from, in order: its entry's mirrors, then its location."""
    entry = find(entries, name)
    if entry is None:
        return [Source(name, False, False)]
    if entry.blocked:
        raise blocked_error(entry, name)
    out = []
    for m in entry.mirrors:
        if (m.pull_from == "digest-only" and not name.digest) or (m.pull_from == "tag-only" and name.digest):
            continue
        out.append(Source(_rewritten(entry, name, m.location), m.insecure, True))
    primary = _rewritten(entry, name, entry.location) if entry.location else name
    return [*out, Source(primary, entry.insecure, False)]


def push_insecure(name: ImageName, entries: list[Entry]) -> bool:
    """Whether pushes to ``name`` are insecure by registries.conf (a blocked one is refused)."""
    entry = find(entries, name)
    if entry is not None and entry.blocked:
        raise blocked_error(entry, name)
    return entry is not None and entry.insecure
