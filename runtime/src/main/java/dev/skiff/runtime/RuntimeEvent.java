package dev.skiff.runtime;

import dev.skiff.api.ImageRef;
import dev.skiff.api.ImageSpec;
import java.nio.file.Path;
import java.util.List;

/**
 * What a runtime did that someone may want to know, as data: a command line turns these into
 * sentences, a worker into metrics and logs. Delivered to a {@link RuntimeListener} on the thread
 * that did it.
 */
public sealed interface RuntimeEvent {
  /** A sandbox is running: {@code kind} is run, warm or restored. */
  record SandboxStarted(String id, ImageSpec image, String kind) implements RuntimeEvent {}

  /** A sandbox is gone; {@code status} is its first process's, null for a warm sandbox. */
  record SandboxClosed(String id, ExitStatus status) implements RuntimeEvent {}

  /** A sandbox whose owning process is gone was cleaned up. */
  record OrphanCleaned(String id, String image, List<String> command, long ownerPid)
      implements RuntimeEvent {}

  /** Something a dead owner left (a state directory without a record, a mount) was cleaned up. */
  record LeftoverCleaned(Path path, String what) implements RuntimeEvent {}

  /** A limit the options asked for cannot be applied on this host ({@code limit}: memory, cpus). */
  record LimitNotEnforced(String limit, String why) implements RuntimeEvent {}

  /** A snapshot was also stored in the bucket its image came from. */
  record SnapshotStored(String name, ImageRef image, String where) implements RuntimeEvent {}

  /** An image was mounted for sandboxes. */
  record ImageMounted(ImageRef image, Path mountpoint) implements RuntimeEvent {}

  /** An image's mount was released ({@code why}: idle, closing). */
  record ImageUnmounted(ImageRef image, Path mountpoint, String why) implements RuntimeEvent {}

  /** What a start read first was merged into the image's trace. */
  record TraceRecorded(ImageRef image, int chunks, int recordings) implements RuntimeEvent {}
}
