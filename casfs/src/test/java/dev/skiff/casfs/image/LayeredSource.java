package dev.skiff.casfs.image;

import java.io.ByteArrayInputStream;
import java.util.ArrayList;
import java.util.List;

/** An image source made of in-memory tar layers, for flattening tests. */
final class LayeredSource implements ImageSource {
  private final List<byte[]> layers;
  private final byte[] config;

  LayeredSource(byte[] config, byte[]... layers) {
    this.config = config;
    this.layers = List.of(layers);
  }

  @Override
  public String describe() {
    return "test-image";
  }

  @Override
  public byte[] config() {
    return config;
  }

  @Override
  public List<Layer> layers() {
    List<Layer> out = new ArrayList<>();
    for (int i = 0; i < layers.size(); i++) {
      byte[] tar = layers.get(i);
      String name = "layer" + (i + 1);
      out.add(
          Layer.of(
              name,
              null,
              null,
              tar.length,
              max -> LayerStreams.open(new ByteArrayInputStream(tar), name, null, null, max)));
    }
    return out;
  }
}
