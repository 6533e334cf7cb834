package dev.skiff.sdk;

import java.io.Serializable;

/**
 * A function's handler on an instance: a reference to an instance method that takes one input
 * ({@code Embedder::embed}). Each container makes one instance of the class with its no-argument
 * constructor, runs its {@link Enter} methods, and calls the method on it for every input, so state
 * kept in fields (a loaded model, a pool) lives as long as the container.
 */
@FunctionalInterface
public interface InstanceHandler<T, I, O> extends Serializable {
  O apply(T self, I input) throws Exception;
}
