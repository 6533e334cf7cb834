package dev.skiff.sdk.tutorial;

/** Reads the container's environment: a function's env and secrets arrive there. */
public final class Env {
  private Env() {}

  public static String get(String name) {
    return System.getenv(name);
  }
}
