"""``python -m layerforge``: the command line (the native ``layerforge`` command execs this)."""

from layerforge.cli.main import run

if __name__ == "__main__":
    run()
