package dev.skiff.runtime;

/** Hears a runtime's {@link RuntimeEvent}s. Must not block; may be called from any thread. */
@FunctionalInterface
public interface RuntimeListener {
  RuntimeListener NONE = e -> {};

  void event(RuntimeEvent e);
}
