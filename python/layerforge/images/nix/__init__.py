"""``nix``: a Nix closure as a layered, reproducible OCI image.

Modules: ``store_path`` (names), ``closure`` (the reference graph, from real Nix),
``popularity`` and ``layering`` (which paths share a layer), ``copy_to_root`` (the root
layer), ``image_view`` (resolving entrypoints inside the image), ``base_image``
(``--from-image``), ``layer_cache`` (reusing store-path layers), ``sbom`` (SPDX),
``snapshotter`` (nix-snapshotter images) and ``build`` (the orchestration).
"""
