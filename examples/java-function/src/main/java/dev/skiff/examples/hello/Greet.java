package dev.skiff.examples.hello;

/** The function the edit-and-rerun loop edits: change the text, run main again. */
public final class Greet {
  private Greet() {}

  public static String greet(String name) {
    System.out.println("greeting " + name);
    return "hello, " + name;
  }
}
