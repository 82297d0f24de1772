"""The ``layerforge`` command line: one module per subcommand."""
