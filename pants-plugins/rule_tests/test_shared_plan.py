"""The one plan process of the images of a shared evaluation (nix/shared_plan.py: plan_batch):
each image's own `nix-plan` argv with its own --out, in address order; images that plan alone
(no argv, an error computing it) are left out, and fewer than two images is no batch."""

from __future__ import annotations

import json

from pants.engine.addresses import Address

from layerforge_pants.nix.shared_plan import plan_batch

A, B, C = (Address("svc", target_name=n) for n in ("a", "b", "c"))


def argv(attr: str) -> list[str]:
    return ["nix-plan", "--out=plan.json", "--tag=latest", f"--derivation=/nix/store/x-{attr}.drv!out"]


def fails() -> list[str]:
    raise ValueError("a bad field")


def test_each_image_its_own_argv_and_plan_file_in_address_order() -> None:
    batch = plan_batch("svc/x.nix", [(B, lambda: argv("b")), (A, lambda: argv("a")), (C, lambda: None)])
    assert batch is not None
    assert batch.plans == ((A, "plan-0.json"), (B, "plan-1.json"))
    assert batch.outs == ("plan-0.json", "plan-1.json")
    assert batch.plan_of(B) == "plan-1.json" and batch.plan_of(C) is None
    assert json.loads(batch.document) == {
        "plans": [["--out=plan-0.json", *argv("a")[2:]], ["--out=plan-1.json", *argv("b")[2:]]]
    }
    assert batch.description == "Plan the layers of 2 images that read svc/x.nix"
    again = plan_batch("svc/x.nix", [(A, lambda: argv("a")), (B, lambda: argv("b"))])
    assert again == batch, "the same process whichever image asks"


def test_fewer_than_two_images_is_no_batch() -> None:
    assert plan_batch("svc/x.nix", [(A, lambda: argv("a")), (B, fails), (C, lambda: ["nix-plan", "--tag=x"])]) is None
