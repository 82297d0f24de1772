"""Multi-platform image indexes made of images built elsewhere (``layerforge index``)."""
