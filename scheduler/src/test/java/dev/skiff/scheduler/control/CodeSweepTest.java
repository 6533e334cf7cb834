package dev.skiff.scheduler.control;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.scheduler.CodeBundle;
import dev.skiff.scheduler.proto.FunctionSpec;
import dev.skiff.scheduler.state.LmdbControlState;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The scheduler keeps the code its functions need, and lets the rest go after a day. */
class CodeSweepTest {
  @TempDir Path tmp;

  private byte[] bundle(String name, String body) throws Exception {
    Path d = Files.createDirectories(tmp.resolve(name));
    Files.writeString(d.resolve("m.py"), body);
    return CodeBundle.pack(d);
  }

  @Test
  void codeNoFunctionNeedsGoesADayAfterItWasLastStoredOrAskedFor() throws Exception {
    AtomicLong now = new AtomicLong(1_700_000_000_000L);
    InstantSource clock = () -> Instant.ofEpochMilli(now.get());
    long day = Duration.ofDays(1).toMillis();
    ScheduledExecutorService timers = Executors.newSingleThreadScheduledExecutor();
    try (LmdbControlState state = LmdbControlState.open(tmp.resolve("state"))) {
      Scheduler s = new Scheduler(state, clock, timers);
      try {
        FunctionSpec spec =
            FunctionSpec.newBuilder()
                .setApp("a")
                .setName("f")
                .setImage("py:1")
                .setLanguage("python")
                .setHandler("m:f")
                .build();
        byte[] v1 = bundle("v1", "def f(x):\n    return 1\n");
        byte[] v2 = bundle("v2", "def f(x):\n    return 2\n");
        s.deploy(spec, v1);
        s.deploy(spec, v2);
        String jar = s.putCode(bundle("jar", "# a jar uploaded, never deployed\n"));
        String asked = s.putCode(bundle("asked", "# asked for later\n"));
        String fresh;

        now.addAndGet(2 * day);
        fresh = s.putCode(bundle("fresh", "# stored an hour before the sweep\n"));
        assertEquals(List.of(), s.missingCode(List.of(asked)), "asked for: it stays");
        now.addAndGet(Duration.ofHours(1).toMillis());
        assertEquals(2, s.sweepCode(), "version 1's bundle and the jar nobody deployed");
        assertFalse(state.hasBlob(CodeBundle.digest(v1)));
        assertFalse(state.hasBlob(jar));
        assertTrue(state.hasBlob(CodeBundle.digest(v2)), "the running version's code stays");
        assertTrue(state.hasBlob(fresh) && state.hasBlob(asked), "recent code stays");

        // An app whose run ended (its functions stopped) needs nothing; a day later it goes.
        s.stopApp("a");
        now.addAndGet(2 * day);
        assertEquals(3, s.sweepCode());
        assertFalse(state.hasBlob(CodeBundle.digest(v2)));
        assertEquals(0, s.sweepCode());
      } finally {
        s.close();
      }
    } finally {
      timers.shutdownNow();
    }
  }
}
