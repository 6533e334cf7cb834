package dev.skiff.sdk;

import java.io.Serializable;

/**
 * A function's handler: a reference to a static method that takes one input ({@code
 * Square::apply}). The container calls the method by its class and name, so it must be a method
 * reference, not a lambda; being {@link Serializable} is what lets the SDK read which method it
 * names.
 */
@FunctionalInterface
public interface Handler<I, O> extends Serializable {
  O apply(I input) throws Exception;
}
