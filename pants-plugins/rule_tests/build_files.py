"""What the RuleRunner cases share: a RuleRunner with the backend's targets, a BUILD file
parsed into its target, and the last line of the error a refused BUILD file gives."""

from __future__ import annotations

from typing import Any

import pytest
from pants.engine.addresses import Address
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import RuleRunner

from layerforge_pants import register


def backend_rule_runner() -> RuleRunner:
    return RuleRunner(target_types=register.target_types(), rules=[])


def parsed_target(rule_runner: RuleRunner, build: str, name: str = "x") -> Any:
    """The target ``name`` of ``src/BUILD`` holding ``build``."""
    rule_runner.write_files({"src/BUILD": build})
    return rule_runner.get_target(Address("src", target_name=name))


def refused(rule_runner: RuleRunner, build: str) -> str:
    """The last line of the error parsing ``build`` gives (it must give one)."""
    with pytest.raises(ExecutionError) as e:
        parsed_target(rule_runner, build)
    return str(e.value).strip().splitlines()[-1]
