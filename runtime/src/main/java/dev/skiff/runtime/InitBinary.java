package dev.skiff.runtime;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * The first process of a warm sandbox: a 129-byte static x86-64 ELF that calls pause(2) forever. It
 * keeps the sandbox alive between {@code runsc exec}s without needing anything from the image
 * (distroless images have no shell and no sleep). Bound read-only into the sandbox; killed with the
 * sandbox.
 */
final class InitBinary {
  static final String PATH_IN_SANDBOX = "/.skiff-init";
  private static final long BASE = 0x400000;

  /** mov eax, 34 (pause); syscall; jmp back to the mov. */
  private static final byte[] CODE = {
    (byte) 0xb8, 0x22, 0, 0, 0, 0x0f, 0x05, (byte) 0xeb, (byte) 0xf7
  };

  private InitBinary() {}

  static byte[] elf() {
    int headers = 64 + 56;
    ByteBuffer b = ByteBuffer.allocate(headers + CODE.length).order(ByteOrder.LITTLE_ENDIAN);
    b.put(new byte[] {0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0});
    b.putShort((short) 2); // ET_EXEC
    b.putShort((short) 0x3e); // x86-64
    b.putInt(1);
    b.putLong(BASE + headers); // entry
    b.putLong(64); // program headers right after this header
    b.putLong(0); // no section headers
    b.putInt(0);
    b.putShort((short) 64);
    b.putShort((short) 56);
    b.putShort((short) 1);
    b.putShort((short) 64);
    b.putShort((short) 0);
    b.putShort((short) 0);
    b.putInt(1); // PT_LOAD
    b.putInt(5); // R + X
    b.putLong(0);
    b.putLong(BASE);
    b.putLong(BASE);
    b.putLong(headers + CODE.length);
    b.putLong(headers + CODE.length);
    b.putLong(0x1000);
    b.put(CODE);
    return b.array();
  }

  /** Writes the binary to {@code dir} (once) and returns its path. */
  static Path install(Path dir) throws IOException {
    String arch = System.getProperty("os.arch");
    if (!arch.equals("amd64") && !arch.equals("x86_64")) {
      throw new IOException(
          "warm sandboxes need an init for " + arch + "; only x86-64 is built in");
    }
    Path file = dir.resolve("skiff-init");
    if (Files.isRegularFile(file) && Files.size(file) == elf().length) {
      return file;
    }
    Files.createDirectories(dir);
    Path tmp = Files.createTempFile(dir, "init-", ".tmp");
    Files.write(tmp, elf());
    Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("r-xr-xr-x"));
    Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    return file;
  }
}
