"""``dir``: a single-layer image from a directory tree."""
