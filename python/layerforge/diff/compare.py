"""Two images compared: their config (each changed field, by its path in the config
document), their layers (added, removed and shared, by diff_id) and their files (added,
removed, and changed in type, size, mode, owner, content digest or link target)."""

from __future__ import annotations

from typing import Any

from layerforge.diff.file_tree import FileEntry
from layerforge.layout.image_reader import StoredImage

#: Config fields that are not the image's settings (the layers are compared on their own).
_SKIPPED = ("rootfs", "history")
_FIELDS = ("type", "size", "mode", "uid", "gid", "digest", "link")


def flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    """``{"config": {"Env": [...]}}`` as ``{"config.Env": [...]}`` (lists stay whole)."""
    if isinstance(doc, dict) and doc:
        out: dict[str, Any] = {}
        for k, v in doc.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: doc}


def config_changes(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    fa = flatten({k: v for k, v in a.items() if k not in _SKIPPED})
    fb = flatten({k: v for k, v in b.items() if k not in _SKIPPED})
    return [{"field": k, "a": fa.get(k), "b": fb.get(k)} for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]


def layer_changes(a: StoredImage, b: StoredImage) -> dict[str, list[dict[str, Any]]]:
    def layers(image: StoredImage) -> dict[str, dict[str, Any]]:
        return {
            diff_id: {"diffId": diff_id, "digest": layer.digest, "size": layer.size, "mediaType": layer.media_type}
            for layer, diff_id in zip(image.manifest.layers, image.config.diff_ids)
        }

    la, lb = layers(a), layers(b)
    return {
        "removed": [la[d] for d in la if d not in lb],
        "added": [lb[d] for d in lb if d not in la],
        "shared": [lb[d] for d in lb if d in la],
    }


def file_changes(a: dict[str, FileEntry], b: dict[str, FileEntry]) -> dict[str, list[dict[str, Any]]]:
    changed = []
    for path in sorted(set(a) & set(b)):
        ja, jb = a[path].to_json(), b[path].to_json()
        fields = [f for f in _FIELDS if ja[f] != jb[f]]
        if fields:
            changed.append({"path": path, "fields": fields, "a": ja, "b": jb})
    return {
        "added": [{"path": p, **b[p].to_json()} for p in sorted(set(b) - set(a))],
        "removed": [{"path": p, **a[p].to_json()} for p in sorted(set(a) - set(b))],
        "changed": changed,
    }
