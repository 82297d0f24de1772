"""The neighbour count that decides how an image's layer jobs are batched is read from BUILD
files' text: one nix_oci_image target per declaration at the start of a line."""

from __future__ import annotations

from layerforge_pants.nix.neighbours import neighbours_in


def test_declarations_are_counted_and_mentions_are_not() -> None:
    one = b'nix_oci_image(\n    name="a",\n    nix_file="a.nix",\n)\n'
    two = b'files(name="f", sources=["*.nix"])\n  nix_oci_image (name="b", flake=".#b")\n\tnix_oci_image(name="c")\n'
    mentions = b'# nix_oci_image(name="old")\nx = "nix_oci_image("\nmy_nix_oci_image(name="m")\n'
    assert neighbours_in([one]) == 1
    assert neighbours_in([one, two]) == 3
    assert neighbours_in([mentions]) == 0
    assert neighbours_in([]) == 0
