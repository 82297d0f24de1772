"""``layerforge diff``: what changed between two images (config, layers, files)."""
