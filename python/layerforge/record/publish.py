"""The publish record (schema ``publish-record.v1.json``): every push of an image, one per
registry and repository, with the digest the tags name and the bytes the push sent (pushed),
had mounted from another repository, relayed from a shallow layout's source, or found
present (skipped). A push adds its entry to an existing record (replacing an earlier push to
the same registry and repository), so one record can collect a publish to several registries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from layerforge.layout.atomic import atomic_write
from layerforge.registry.push import PushResult

SCHEMA = "https://layerforge.dev/schemas/publish-record.v1.json"
VERSION = 1
ACTIONS = ("pushed", "mounted", "streamed", "skipped")


def push_entry(result: PushResult, source: str) -> dict[str, Any]:
    target = f"{result.target.registry}/{result.target.repository}"
    return {
        "source": source,
        "registry": result.target.registry,
        "repository": result.target.repository,
        "digest": result.digest,
        "references": [f"{target}:{t}" for t in result.tags] or [f"{target}@{result.digest}"],
        "tags": dict(result.tags),
        "bytes": {a: result.bytes(a) for a in ACTIONS},
        "blobs": {a: result.count(a) for a in ACTIONS},
        "manifestsWritten": result.manifests_pushed,
        "referrers": list(result.referrers),
    }


def add_push(path: Path, entry: dict[str, Any]) -> dict[str, Any]:
    """Write ``path`` with ``entry`` added to the pushes it lists (atomically)."""
    pushes: list[dict[str, Any]] = []
    try:
        old = json.loads(path.read_bytes())
    except (OSError, ValueError):
        old = None
    if isinstance(old, dict) and old.get("$schema") == SCHEMA and isinstance(old.get("pushes"), list):
        key = (entry["registry"], entry["repository"])
        pushes = [p for p in old["pushes"] if isinstance(p, dict) and (p.get("registry"), p.get("repository")) != key]
    record = {"$schema": SCHEMA, "schemaVersion": VERSION, "kind": "publish", "pushes": [*pushes, entry]}
    atomic_write(path, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
    return record
