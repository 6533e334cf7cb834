package dev.skiff.runtime;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Copying a process's streams as they arrive. */
final class Pipes {
  private static final Logger LOG = LoggerFactory.getLogger(Pipes.class);

  private Pipes() {}

  static Thread pump(InputStream in, OutputStream to, String name, SandboxProcess of) {
    return Thread.ofPlatform()
        .daemon()
        .name("skiff-pipe")
        .start(
            () -> {
              try {
                copy(in, to);
              } catch (IOException e) {
                if (of.isAlive()) { // the reader went away (a closed terminal, say): say so once
                  LOG.warn("{}: copying stopped: {}", name, e.toString());
                }
              }
            });
  }

  /**
   * Copies to the end of {@code in}, flushing after each read so that nothing waits in a buffer.
   */
  static void copy(InputStream in, OutputStream to) throws IOException {
    byte[] buf = new byte[64 << 10];
    for (int n; (n = in.read(buf)) >= 0; ) {
      to.write(buf, 0, n);
      to.flush();
    }
  }
}
