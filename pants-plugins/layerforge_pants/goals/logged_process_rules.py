"""The rule of a logged process (see `logged_process.py`)."""

from __future__ import annotations

import logging

from pants.engine.internals.session import RunId
from pants.engine.process import ProcessResultMetadata
from pants.engine.rules import collect_rules, rule

from layerforge_pants.goals import engine
from layerforge_pants.goals.logged_process import LoggedProcess, LoggedResult, finished_line

logger = logging.getLogger(__name__)


@rule
async def run_logged_process(request: LoggedProcess, run_id: RunId) -> LoggedResult:
    result = await engine.execute(request.process)
    if result.exit_code == 0 and result.metadata.source(run_id) is ProcessResultMetadata.Source.RAN:
        (entries,) = await engine.entries_all([result.output_digest])
        logger.info(finished_line(request.process.description, entries, result.metadata.total_elapsed_ms))
    return LoggedResult(result)


def rules() -> list[object]:
    return [*collect_rules()]
