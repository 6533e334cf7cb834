package dev.skiff.tracer;

import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.digest.DigestAlgorithm;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a start of an image read, in order: each chunk (by digest, so a trace helps any image that
 * shares the chunk) with its typical first-access time after the mount, its size, the file it
 * belonged to (for people), and how many recordings saw it. Immutable.
 *
 * <p>Binary form: "SKTR", version, digest algorithm, recordings, entry count, then per entry the
 * digest, micros, plain length, samples, prefetch hits and a path number; then the path table.
 */
public final class Trace {
  private static final int MAGIC = 0x534b5452; // "SKTR"
  private static final int VERSION = 1;

  /**
   * One chunk of a trace. {@code micros} is the mean first-access time over {@code samples}
   * recordings; in {@code readyHits} of them the chunk was already fetched (or on its way) when it
   * was first read: a prefetch hit rather than a demand miss.
   */
  public record Entry(
      Digest digest, long micros, int plainLength, int samples, int readyHits, String path) {}

  private final DigestAlgorithm algorithm;
  private final int recordings;
  private final List<Entry> entries;

  public Trace(DigestAlgorithm algorithm, int recordings, List<Entry> entries) {
    this.algorithm = algorithm;
    this.recordings = recordings;
    List<Entry> sorted = new ArrayList<>(entries);
    sorted.sort(Comparator.comparingLong(Entry::micros));
    this.entries = List.copyOf(sorted);
  }

  public DigestAlgorithm algorithm() {
    return algorithm;
  }

  public int recordings() {
    return recordings;
  }

  /** Entries in order of typical first access. */
  public List<Entry> entries() {
    return entries;
  }

  public long bytes() {
    return entries.stream().mapToLong(Entry::plainLength).sum();
  }

  /**
   * Merges a new recording into this trace: a chunk's time becomes the mean over the recordings
   * that saw it; chunks only one side saw are kept.
   */
  public Trace merge(Trace recording) {
    if (recording.algorithm != algorithm) {
      throw new IllegalArgumentException(
          "cannot merge " + recording.algorithm + " trace into " + algorithm);
    }
    Map<Digest, Entry> merged = new LinkedHashMap<>();
    for (Entry e : entries) {
      merged.put(e.digest(), e);
    }
    for (Entry e : recording.entries) {
      merged.merge(
          e.digest(),
          e,
          (a, b) ->
              new Entry(
                  a.digest(),
                  (a.micros() * a.samples() + b.micros() * b.samples())
                      / (a.samples() + b.samples()),
                  a.plainLength(),
                  a.samples() + b.samples(),
                  a.readyHits() + b.readyHits(),
                  a.path()));
    }
    return new Trace(
        algorithm, recordings + recording.recordings, new ArrayList<>(merged.values()));
  }

  public byte[] encode() {
    try {
      ByteArrayOutputStream bos = new ByteArrayOutputStream(64 + entries.size() * 40);
      DataOutputStream out = new DataOutputStream(bos);
      out.writeInt(MAGIC);
      out.writeInt(VERSION);
      out.writeUTF(algorithm.label());
      out.writeInt(recordings);
      out.writeInt(entries.size());
      Map<String, Integer> paths = new HashMap<>();
      List<String> pathTable = new ArrayList<>();
      for (Entry e : entries) {
        out.write(e.digest().bytes());
        out.writeLong(e.micros());
        out.writeInt(e.plainLength());
        out.writeInt(e.samples());
        out.writeInt(e.readyHits());
        out.writeInt(
            paths.computeIfAbsent(
                e.path() == null ? "" : e.path(),
                p -> {
                  pathTable.add(p);
                  return pathTable.size() - 1;
                }));
      }
      out.writeInt(pathTable.size());
      for (String p : pathTable) {
        byte[] b = p.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        out.writeInt(b.length);
        out.write(b);
      }
      out.flush();
      return bos.toByteArray();
    } catch (IOException e) {
      throw new IllegalStateException("writing to memory failed", e);
    }
  }

  public static Trace decode(byte[] data) throws IOException {
    DataInputStream in = new DataInputStream(new ByteArrayInputStream(data));
    if (in.readInt() != MAGIC || in.readInt() != VERSION) {
      throw new IOException("not a Skiff trace (bad magic or version)");
    }
    DigestAlgorithm algorithm = DigestAlgorithm.fromLabel(in.readUTF());
    int recordings = in.readInt();
    int n = in.readInt();
    if (n < 0 || n > 50_000_000) {
      throw new IOException("corrupt trace: " + n + " entries");
    }
    byte[][] digests = new byte[n][];
    long[] micros = new long[n];
    int[] lengths = new int[n];
    int[] samples = new int[n];
    int[] hits = new int[n];
    int[] pathNo = new int[n];
    for (int i = 0; i < n; i++) {
      digests[i] = in.readNBytes(algorithm.length());
      micros[i] = in.readLong();
      lengths[i] = in.readInt();
      samples[i] = in.readInt();
      hits[i] = in.readInt();
      pathNo[i] = in.readInt();
    }
    int np = in.readInt();
    String[] paths = new String[np];
    for (int i = 0; i < np; i++) {
      byte[] b = in.readNBytes(in.readInt());
      paths[i] = new String(b, java.nio.charset.StandardCharsets.UTF_8);
    }
    List<Entry> entries = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      if (pathNo[i] < 0 || pathNo[i] >= np) {
        throw new IOException("corrupt trace: path number " + pathNo[i]);
      }
      entries.add(
          new Entry(
              new Digest(algorithm, digests[i]),
              micros[i],
              lengths[i],
              samples[i],
              hits[i],
              paths[pathNo[i]]));
    }
    return new Trace(algorithm, recordings, entries);
  }
}
