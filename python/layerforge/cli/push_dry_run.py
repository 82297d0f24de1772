"""``layerforge push --dry-run``: what a push would send, as lines or ``--json``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from layerforge.cli.registry_options import jobs_and_retries
from layerforge.layout.oci_layout import OciLayout
from layerforge.model.reference import split_layout_ref
from layerforge.registry import credentials
from layerforge.registry.client import RegistryClient
from layerforge.registry.known_blobs import KnownBlobs
from layerforge.registry.push import default_known_blobs_path
from layerforge.registry.push_plan import MOUNT, PRESENT, PUSH, RELAY, TAG, PushPlan, plan_push
from layerforge.registry.reference import parse_image_name
from layerforge.registry.transport import RetryPolicy, request_timeout


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def plan_json(plan: PushPlan) -> dict[str, Any]:
    target = f"{plan.target.registry}/{plan.target.repository}"
    return {
        "dryRun": True,
        "registry": plan.target.registry,
        "repository": plan.target.repository,
        "digest": plan.digest,
        "mediaType": plan.media_type,
        "blobs": [
            {
                "digest": b.digest,
                "size": b.size,
                "action": b.action,
                **({"from": b.source} if b.source else {}),
                **({"absent": True} if b.absent else {}),
            }
            for b in plan.blobs
        ],
        "manifests": [{"digest": d, "action": a} for d, a in plan.manifests],
        "referrers": [{"digest": d, "action": a} for d, a in plan.referrers],
        "tags": [{"reference": f"{target}:{t.tag}", "action": t.action, "current": t.current} for t in plan.tags],
        "bytes": {a: plan.bytes(a) for a in (PUSH, MOUNT, RELAY, PRESENT)},
    }


def plan_lines(plan: PushPlan) -> list[str]:
    target = f"{plan.target.registry}/{plan.target.repository}"
    lines = []
    for b in plan.blobs:
        how = {PUSH: "would push", MOUNT: "would mount", RELAY: "would relay", PRESENT: "present"}[b.action]
        where = f" from {b.source}" if b.source else ""
        lacking = "; not in the layout" if b.absent and b.action != PRESENT else ""
        lines.append(f"blob {b.digest} {b.size} bytes: {how}{where}{lacking}")
    for d, a in plan.manifests:
        lines.append(f"manifest {d}: {'would push' if a == PUSH else 'present'}")
    for d, a in plan.referrers:
        lines.append(f"referrer {d}: {'would push' if a == PUSH else 'present'}")
    for t in plan.tags:
        now = f" (now {t.current})" if t.current else " (new tag)"
        action = "would tag" + now if t.action == TAG else "unchanged"
        lines.append(f"tag {target}:{t.tag} -> {plan.digest}: {action}")
    lines.append(
        f"dry run: would push {plan.count(PUSH)} blobs ({_mib(plan.bytes(PUSH))}), mount {plan.count(MOUNT)}, "
        f"relay {plan.count(RELAY)}; {plan.count(PRESENT)} present; "
        f"{sum(1 for t in plan.tags if t.action == TAG)} tags to set; nothing was sent"
    )
    return lines


def run_dry(args: argparse.Namespace) -> int:
    layout_dir, ref = split_layout_ref(args.source)
    target = parse_image_name(args.target)
    _, retries = jobs_and_retries(args)
    layout = OciLayout.open(Path(layout_dir))
    client = RegistryClient(
        target.registry,
        credentials=credentials.lookup(target.registry),
        insecure=args.insecure,
        retry=RetryPolicy(attempts=retries),
        timeout=request_timeout(os.environ),
        pull_only=True,
    )
    try:
        plan = plan_push(
            layout, ref, target, client, extra_tags=tuple(args.tag), known=KnownBlobs(default_known_blobs_path())
        )
    finally:
        client.close()
    if args.json:
        print(json.dumps(plan_json(plan), indent=2, sort_keys=True))
    else:
        for line in plan_lines(plan):
            print(line, file=sys.stdout)
    return 0
