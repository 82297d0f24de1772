"""``nix``: a Nix closure as a layered, reproducible OCI image.

Modules: ``store_path`` (names), ``derivation`` (``DRV!OUT`` references), ``flake`` (flake
output references), ``closure`` (the reference graph and realising, from real Nix),
``popularity`` and ``layering`` (which paths share a layer), ``copy_to_root`` (the root
layer), ``accounts`` (the user a non-root image runs as), ``image_view`` and ``image_files``
(resolving entrypoints and reading files inside the image), ``plan`` (everything decided
before writing), ``layer_cache`` (reusing store-path layers), ``sbom`` (SPDX),
``cyclonedx`` (CycloneDX), ``provenance`` (SLSA provenance as an in-toto Statement),
``snapshotter`` (nix-snapshotter images) and ``build`` (the orchestration).
"""
