"""One package per image kind. Each turns its inputs into layers plus a config and hands
them to :func:`layerforge.layout.image_writer.write_image`."""
