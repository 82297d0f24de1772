"""Building layer blobs through the native core."""
