package dev.skiff.bench;

import dev.skiff.casfs.digest.DigestAlgorithm;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Digesting one 1 MiB chunk, as every import and every verified fetch does: XXH3-128 (the default)
 * against SHA-256 (the option for stores shared without trust).
 *
 * <pre>
 * java $(sed -n 's/^skiff.jvm.flags=//p' jvm.properties) -jar bench/target/skiff-bench.jar DigestBenchmark \
 *     -jvmArgsAppend "$(sed -n 's/^skiff.jvm.flags=//p' jvm.properties)"
 * </pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(2)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class DigestBenchmark {
  @Param({"XXH3_128", "SHA256"})
  public DigestAlgorithm algorithm;

  private byte[] chunk;

  @Setup
  public void setUp() {
    chunk = new byte[1 << 20];
    new SplittableRandom(1).nextBytes(chunk);
  }

  @Benchmark
  public Object digestChunk() {
    return algorithm.digest(chunk);
  }
}
