package dev.skiff.examples.caller;

import dev.skiff.sdk.RemoteException;
import dev.skiff.sdk.SkiffFunction;
import java.util.List;
import java.util.stream.IntStream;

/**
 * Calls a Python function deployed on Skiff by anyone ({@code skiff function deploy demo/square
 * --python handlers:square ...}, as tools/demo does) by its name: a call, a map, and a failure as
 * a typed exception.
 */
public final class Main {
  private Main() {}

  public static void main(String[] args) {
    String app = args.length > 0 ? args[0] : "demo";
    String name = args.length > 1 ? args[1] : "square";
    SkiffFunction<Integer, Integer> square =
        SkiffFunction.lookup(app, name, Integer.class, Integer.class);
    System.out.println(square.id() + ".remote(9) -> " + square.remote(9));
    List<Integer> all = square.map(IntStream.rangeClosed(1, 10).boxed().toList()).toList();
    System.out.println(square.id() + ".map(1..10) -> " + all);
    SkiffFunction<String, Integer> wrong = SkiffFunction.lookup(app, name, String.class, Integer.class);
    try {
      wrong.remote("not a number");
    } catch (RemoteException e) {
      System.out.println(
          "a Python error, typed: " + e.remoteType() + ": " + e.remoteMessage().lines().findFirst().orElse(""));
    }
  }
}
