"""Container runtimes (docker, podman): finding one, loading images from layouts into it."""
