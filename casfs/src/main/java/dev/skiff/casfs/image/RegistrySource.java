package dev.skiff.casfs.image;

import dev.skiff.casfs.registry.RegistryClient;
import dev.skiff.casfs.registry.RegistryRef;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * An image in a registry: its manifest and config fetched (and checked against their digests) when
 * opened, each layer streamed from the registry as the importer reads it, decompressed and checked
 * against its digest on the way, never written to disk as a tar.
 */
final class RegistrySource implements ImageSource {
  private final RegistryRef ref;
  private final byte[] config;
  private final List<Layer> layers;
  private final String manifestDigest;

  private RegistrySource(RegistryRef ref, byte[] config, List<Layer> layers, String digest) {
    this.ref = ref;
    this.config = config;
    this.layers = layers;
    this.manifestDigest = digest;
  }

  static RegistrySource open(RegistryRef ref, RegistryClient.Options options) throws IOException {
    RegistryClient client = new RegistryClient(ref.registry(), options);
    RegistryClient.Manifest m = client.manifest(ref);
    byte[] config = client.blob(ref.repository(), m.config().digest());
    List<Layer> layers = new ArrayList<>();
    for (RegistryClient.Descriptor d : m.layers()) {
      if (!ContainerImageSource.LAYER_TYPES.contains(d.mediaType())) {
        throw new ImportException(
            ref.toString(), d.digest(), "unknown layer media type '" + d.mediaType() + "'");
      }
      String describe = ref + ": layer " + d.digest();
      layers.add(
          Layer.streamed(
              describe,
              d.digest(),
              d.mediaType(),
              d.size(),
              () -> client.openBlob(ref.repository(), d.digest())));
    }
    return new RegistrySource(ref, config, layers, m.digest());
  }

  @Override
  public String describe() {
    return ref.digest() != null ? ref.toString() : ref + "@" + manifestDigest;
  }

  @Override
  public byte[] config() {
    return config;
  }

  @Override
  public List<Layer> layers() {
    return layers;
  }
}
