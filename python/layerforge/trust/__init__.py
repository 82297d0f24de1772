"""Trust boundaries: one module per kind of untrusted input, used everywhere it enters.

Every image, layer, tar, kconfig, registry answer and argument is hostile until one of these
modules has checked it. See README "What layerforge trusts" for the rules in one line each.
"""
