"""The layerforge Pants backend (targets, package/publish rules).

Loaded through ``backend_packages = ["layerforge_pants"]`` with ``pants-plugins`` on the
plugin ``pythonpath``.
"""
