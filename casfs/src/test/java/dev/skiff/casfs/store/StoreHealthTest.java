package dev.skiff.casfs.store;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.casfs.testing.FakeClock;
import java.time.Duration;
import org.junit.jupiter.api.Test;

class StoreHealthTest {
  final FakeClock clock = new FakeClock();
  final StoreHealth health = new StoreHealth("s3://b at http://h", Duration.ofSeconds(5), clock);

  @Test
  void aCallWithoutAnAnswerMakesTheNextOnesFailAtOnceNamingTheStoreAndTheError() throws Exception {
    StoreHealth.Admission a = health.admit("GET x");
    health.unanswered(a, "GET x timed out after 3 s");
    StoreUnavailableException e =
        assertThrows(StoreUnavailableException.class, () -> health.admit("GET y"));
    assertTrue(
        e.getMessage().contains("GET y")
            && e.getMessage().contains("s3://b at http://h")
            && e.getMessage().contains("GET x timed out after 3 s"),
        e.getMessage());
  }

  @Test
  void afterTheCoolDownOneProbeAtATimeGoesOutAndItsAnswerClosesIt() throws Exception {
    health.unanswered(health.admit("GET x"), "refused");
    clock.advance(Duration.ofSeconds(5));
    StoreHealth.Admission probe = health.admit("GET y");
    assertTrue(probe.probe());
    assertThrows(
        StoreUnavailableException.class, () -> health.admit("GET z"), "one probe at a time");
    health.answered(probe);
    assertFalse(health.isDown());
    assertFalse(health.admit("GET z").probe());
  }

  @Test
  void aFailedProbeStartsAnotherCoolDown() throws Exception {
    health.unanswered(health.admit("GET x"), "refused");
    clock.advance(Duration.ofSeconds(5));
    health.unanswered(health.admit("GET y"), "refused again");
    StoreUnavailableException e =
        assertThrows(StoreUnavailableException.class, () -> health.admit("GET z"));
    assertTrue(e.getMessage().contains("refused again"), e.getMessage());
    clock.advance(Duration.ofSeconds(5));
    assertTrue(health.admit("GET z").probe());
  }

  @Test
  void anAbandonedProbeLetsTheNextCallProbe() throws Exception {
    health.unanswered(health.admit("GET x"), "refused");
    clock.advance(Duration.ofSeconds(5));
    health.abandoned(health.admit("GET y"));
    assertTrue(health.admit("GET z").probe());
  }

  @Test
  void oneSlowCallDoesNotMarkDownAStoreThatAnsweredALaterOne() throws Exception {
    StoreHealth.Admission slow = health.admit("GET big");
    clock.advance(Duration.ofSeconds(1));
    health.answered(health.admit("GET small"));
    health.unanswered(slow, "GET big timed out");
    assertFalse(health.isDown());
    health.unanswered(health.admit("GET next"), "GET next timed out");
    assertTrue(health.isDown());
  }
}
