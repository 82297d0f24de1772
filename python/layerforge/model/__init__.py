"""The OCI image model: plain data with canonical JSON encodings.

Nothing here touches the filesystem; :mod:`layerforge.layout` stores these objects.
"""
