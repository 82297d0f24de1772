"""The rule that pulls a remote_oci_image (`layerforge pull`, keyed by its digest; asked again,
uncached, with the registry environment when the cacheable pull fails)."""

from __future__ import annotations

from pants.engine.rules import collect_rules, rule

from layerforge_pants.goals import engine
from layerforge_pants.goals.pull import (
    PULL_FIELDS,
    PulledImage,
    RemoteImageRequest,
    pull_process,
    pulled_image,
    pulled_layout,
)
from layerforge_pants.goals.tool_rules import run_layerforge


@rule(desc="Pull a remote_oci_image")
async def pull_remote_image(request: RemoteImageRequest) -> PulledImage:
    result = await engine.execute(await engine.layerforge_process(pull_process(request)))
    if result.exit_code != 0:  # a login or a CA the cacheable pull does not see
        result = await run_layerforge(pull_process(request, registry=True), request.address, PULL_FIELDS)
    return pulled_image(await engine.subset(pulled_layout(result)))


def rules() -> list[object]:
    return [*collect_rules()]
