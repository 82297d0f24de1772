"""Nydus images: OCI layers converted to Nydus data blobs plus a RAFS v6 bootstrap layer,
the way ``nydusify convert`` and the nydus-snapshotter converter lay them out."""
