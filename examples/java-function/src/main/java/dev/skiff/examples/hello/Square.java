package dev.skiff.examples.hello;

/** A function: a static method with one input. */
public final class Square {
  private Square() {}

  public static int apply(int x) {
    return x * x;
  }
}
