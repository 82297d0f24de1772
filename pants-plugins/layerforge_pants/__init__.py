"""The layerforge Pants backend (targets, package/publish rules).

Loaded through ``backend_packages = ["layerforge_pants"]`` with ``pants-plugins`` on the
plugin ``pythonpath``.
"""

#: The plugin's release: the one project version (Cargo.toml's [workspace.package]), which is
#: also the layerforge tool release it runs (goals/tool_release.py).
__version__ = "0.1.0"
