package dev.skiff.examples.hello;

import dev.skiff.sdk.App;
import dev.skiff.sdk.AppRun;
import dev.skiff.sdk.Image;
import dev.skiff.sdk.SkiffFunction;
import java.util.List;
import java.util.stream.IntStream;

/**
 * Defines two Java functions and runs them on Skiff: a call, and a map over 1,000 inputs. Running
 * main ships this project's classes (only what changed since the last run), so an edit to {@link
 * Greet} runs remotely on the next run, with no image built. Prints how long each step took, the
 * JVM's own start apart.
 *
 * <p>The image (default {@code jvm:1}, or the first argument) needs a JVM at {@code
 * /opt/java/bin/java} (or set {@code SKIFF_EXAMPLE_JVM}); the scheduler is found as the CLI finds
 * it ({@code $SKIFF_SCHEDULER}, or a {@code skiff serve} on this host).
 */
public final class Main {
  private Main() {}

  public static void main(String[] args) {
    long mainStart = System.nanoTime();
    // A caller that times the whole run says when it launched this JVM (epoch milliseconds).
    String launched = System.getenv("SKIFF_LAUNCHED_AT_MS");
    long jvmMillis =
        launched == null ? -1 : System.currentTimeMillis() - Long.parseLong(launched.trim());

    App app = App.named("hello-java");
    Image image =
        Image.of(args.length > 0 ? args[0] : "jvm:1")
            .jvm(System.getenv().getOrDefault("SKIFF_EXAMPLE_JVM", "/opt/java/bin/java"));
    SkiffFunction<String, String> greet = app.function(Greet::greet).image(image).build();
    SkiffFunction<Integer, Integer> square =
        app.function(Square::apply).image(image).maxContainers(2).build();

    try (AppRun run = app.run()) {
      String greeting = greet.remote("Skiff");
      long toResult = (System.nanoTime() - mainStart) / 1_000_000;
      System.out.printf(
          "greet.remote(\"Skiff\") -> %s   (%d ms from the start of main to the result, %d ms of it"
              + " shipping %d KiB of class path (%d KiB new) and deploying%s)%n",
          greeting,
          toResult,
          run.deployment().millis(),
          run.deployment().classPathBytes() >> 10,
          run.deployment().uploadedBytes() >> 10,
          jvmMillis < 0 ? "" : "; before main, the JVM's own start took " + jvmMillis + " ms");
      System.out.println("square.remote(12) -> " + square.remote(12));
      long t = System.nanoTime();
      List<Integer> squares = square.map(IntStream.rangeClosed(1, 1000).boxed().toList()).toList();
      double secs = (System.nanoTime() - t) / 1e9;
      System.out.printf(
          "square.map(1..1000) -> %d results in order, last %d, %.0f inputs/s%n",
          squares.size(), squares.get(squares.size() - 1), squares.size() / secs);
    }
  }
}
