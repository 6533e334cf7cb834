package dev.skiff.runtime.build;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Map;
import org.junit.jupiter.api.Test;

/** ENV and LABEL arguments read as Docker reads them. */
class EnvPairsTest {
  @Test
  void quotesAndEscapesAreDockers() throws Exception {
    assertEquals(Map.of("A", "b"), ImageBuilder.pairs("A b", "t"));
    assertEquals(
        Map.of("A", "1", "B", "two words"), ImageBuilder.pairs("A=1 B=\"two words\"", "t"));
    assertEquals(
        Map.of("K", "V with \"quotes\" and \\"),
        ImageBuilder.pairs("K=\"V with \\\"quotes\\\" and \\\\\"", "t"));
    assertEquals(Map.of("K", "a b"), ImageBuilder.pairs("K=a\\ b", "t"));
    assertEquals(Map.of("K", "$HOME \\n"), ImageBuilder.pairs("K='$HOME \\n'", "t"));
    assertEquals(Map.of("K", ""), ImageBuilder.pairs("K=", "t"));
    assertThrows(ImageBuilder.BuildException.class, () -> ImageBuilder.pairs("K=\"open", "t"));
    assertThrows(ImageBuilder.BuildException.class, () -> ImageBuilder.pairs("K=1 junk", "t"));
  }
}
