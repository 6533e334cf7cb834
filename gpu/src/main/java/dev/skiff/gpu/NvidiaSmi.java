package dev.skiff.gpu;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The inventory as {@code nvidia-smi} prints it: the fallback where NVML cannot be loaded. One
 * {@code --query-gpu} call for the GPUs and one plain call for the CUDA version, which no query
 * field gives.
 */
public final class NvidiaSmi {
  private NvidiaSmi() {}

  /** The fields asked for, in the order {@link #parseQuery} reads them. */
  static final String FIELDS =
      "index,name,uuid,memory.total,memory.used,utilization.gpu,temperature.gpu,power.draw,"
          + "mig.mode.current,driver_version,pci.bus_id";

  private static final Pattern CUDA = Pattern.compile("CUDA Version:\\s*([0-9.]+)");

  /**
   * Runs {@code smi} ({@code nvidia-smi} on the PATH by default) and reads the inventory.
   *
   * @param procRoot where {@code /proc/driver/nvidia} is looked for, for the GPUs' device minor
   *     numbers (a GPU without an entry there is taken to have its index as its minor)
   * @throws IOException if it cannot be run or fails: the message says what it printed
   */
  public static GpuHost read(String smi, Path procRoot) throws IOException {
    String query = run(List.of(smi, "--query-gpu=" + FIELDS, "--format=csv,noheader,nounits"), smi);
    String plain = run(List.of(smi), smi);
    Matcher m = CUDA.matcher(plain);
    return parse(query, m.find() ? m.group(1) : "", Minors.read(procRoot));
  }

  /** The inventory of {@code query} (the query's output) with the CUDA version already found. */
  static GpuHost parse(String query, String cudaVersion, Map<String, Integer> minorsByBus) {
    List<Gpu> gpus = new ArrayList<>();
    String driver = "";
    for (String line : query.split("\n")) {
      if (line.isBlank()) {
        continue;
      }
      String[] f = line.split(",", -1);
      if (f.length != FIELDS.split(",").length) {
        throw new IllegalArgumentException(
            "nvidia-smi printed a line of "
                + f.length
                + " fields, not "
                + FIELDS.split(",").length
                + ": "
                + line);
      }
      for (int i = 0; i < f.length; i++) {
        f[i] = f[i].strip();
      }
      int index = Integer.parseInt(f[0]);
      long memory = number(f[3]);
      driver = f[9];
      Integer minor = minorsByBus.get(Minors.busKey(f[10]));
      gpus.add(
          new Gpu(
              index,
              minor != null ? minor : index,
              f[1],
              GpuTypes.of(f[1], memory),
              f[2],
              memory,
              number(f[4]),
              (int) number(f[5]),
              (int) number(f[6]),
              decimal(f[7]),
              f[8].equalsIgnoreCase("Enabled")));
    }
    return new GpuHost("nvidia-smi", driver, cudaVersion, gpus, "");
  }

  /** A whole number, or -1 for what nvidia-smi prints when it has none ("[N/A]", "N/A"). */
  private static long number(String s) {
    try {
      return Math.round(Double.parseDouble(s));
    } catch (NumberFormatException e) {
      return -1;
    }
  }

  private static double decimal(String s) {
    try {
      return Double.parseDouble(s);
    } catch (NumberFormatException e) {
      return -1;
    }
  }

  private static String run(List<String> command, String smi) throws IOException {
    Process p;
    try {
      p = new ProcessBuilder(command).redirectErrorStream(true).start();
    } catch (IOException e) {
      throw new IOException(
          String.valueOf(e.getMessage()).contains("No such file")
              ? "no " + smi + " and no NVML here: no NVIDIA driver is installed"
              : "cannot run " + smi + ": " + e.getMessage(),
          e);
    }
    p.getOutputStream().close();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    try {
      if (!p.waitFor(30, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new IOException(smi + " did not answer within 30 s");
      }
    } catch (InterruptedException e) {
      p.destroyForcibly();
      Thread.currentThread().interrupt();
      throw new IOException("interrupted running " + smi);
    }
    if (p.exitValue() != 0) {
      throw new IOException(smi + " failed (exit " + p.exitValue() + "): " + out.strip());
    }
    return out;
  }

  /** The GPUs' device minor numbers, from the driver's {@code /proc} files, by PCI bus id. */
  static final class Minors {
    private Minors() {}

    private static final Pattern MINOR = Pattern.compile("(?m)^Device Minor:\\s*(\\d+)");

    static Map<String, Integer> read(Path procRoot) throws IOException {
      Path gpus = procRoot.resolve("driver/nvidia/gpus");
      Map<String, Integer> out = new java.util.HashMap<>();
      if (!Files.isDirectory(gpus)) {
        return out;
      }
      try (var dirs = Files.list(gpus)) {
        for (Path d : dirs.toList()) {
          Path info = d.resolve("information");
          if (Files.isRegularFile(info)) {
            Matcher m = MINOR.matcher(Files.readString(info));
            if (m.find()) {
              out.put(busKey(d.getFileName().toString()), Integer.parseInt(m.group(1)));
            }
          }
        }
      }
      return out;
    }

    /**
     * A PCI bus id as a key: nvidia-smi prints {@code 00000000:3B:00.0}, /proc names the directory
     * {@code 0000:3b:00.0}.
     */
    static String busKey(String busId) {
      String b = busId.strip().toLowerCase(java.util.Locale.ROOT);
      int colon = b.indexOf(':');
      if (colon > 4) {
        b = b.substring(colon - 4);
      }
      return b;
    }
  }
}
