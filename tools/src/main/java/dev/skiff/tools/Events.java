package dev.skiff.tools;

import dev.skiff.runtime.RuntimeEvent;
import dev.skiff.runtime.RuntimeListener;

/**
 * What the command line says of a runtime's events: a sentence on stderr for those a person cares
 * about.
 */
final class Events {
  private Events() {}

  /** Prints the events a person should see on stderr. */
  static RuntimeListener toStderr() {
    return e -> {
      String s = sentence(e);
      if (s != null) {
        System.err.println("skiff: " + s);
      }
    };
  }

  /** The sentence for an event, or null for those that go unsaid on a command line. */
  static String sentence(RuntimeEvent e) {
    return switch (e) {
      case RuntimeEvent.OrphanCleaned o ->
          "cleaned up sandbox "
              + o.id()
              + " ("
              + o.image()
              + ", "
              + String.join(" ", o.command())
              + ") left by process "
              + o.ownerPid()
              + ", which is gone";
      case RuntimeEvent.LeftoverCleaned l -> "cleaned up " + l.path() + " (" + l.what() + ")";
      case RuntimeEvent.LimitNotEnforced l -> "--" + l.limit() + " is not enforced: " + l.why();
      case RuntimeEvent.SnapshotStored s ->
          "snapshot " + s.name() + " of " + s.image() + " stored in " + s.where() + " too";
      case RuntimeEvent.TraceRecorded t ->
          "recorded "
              + t.chunks()
              + " chunks into the trace of "
              + t.image()
              + " ("
              + t.recordings()
              + " recordings)";
      case RuntimeEvent.SandboxStarted s -> null;
      case RuntimeEvent.SandboxClosed c -> null;
      case RuntimeEvent.ImageMounted m -> null;
      case RuntimeEvent.ImageUnmounted u -> null;
    };
  }
}
