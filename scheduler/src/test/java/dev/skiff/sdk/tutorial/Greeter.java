package dev.skiff.sdk.tutorial;

import dev.skiff.sdk.Enter;
import dev.skiff.sdk.Exit;
import java.util.List;

/**
 * A function on an instance: the container makes one Greeter, runs {@link #warm} once, and calls
 * {@link #greet} on it for every input, so {@code greetings} counts across calls.
 */
public final class Greeter {
  /** What a caller sends: a record travels as a JSON object. */
  public record Request(String name, List<String> titles) {}

  /** What comes back. */
  public record Greeting(String text, int number, String warmedBy) {}

  private String warmedBy = "nobody";
  private int greetings;

  @Enter
  void warm() {
    warmedBy = "enter";
    System.out.println("warming up");
  }

  public Greeting greet(Request r) {
    greetings++;
    return new Greeting(
        "hello " + String.join(" ", r.titles()) + " " + r.name(), greetings, warmedBy);
  }

  @Exit
  void bye() {
    System.out.println("bye after " + greetings + " greetings");
  }
}
