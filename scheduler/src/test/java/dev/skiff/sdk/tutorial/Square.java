package dev.skiff.sdk.tutorial;

/** A function as a static method: one input, one result. */
public final class Square {
  private Square() {}

  public static int apply(int x) {
    System.out.println("squaring " + x);
    return x * x;
  }
}
