"""OCI image layouts on disk: storing blobs, tagging images, exporting them."""
