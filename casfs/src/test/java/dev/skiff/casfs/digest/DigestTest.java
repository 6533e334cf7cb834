package dev.skiff.casfs.digest;

import static java.nio.charset.StandardCharsets.US_ASCII;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class DigestTest {
  @Test
  void sha256MatchesTheStandardVector() {
    assertEquals(
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        DigestAlgorithm.SHA256.digest("abc".getBytes(US_ASCII)).toString());
  }

  @Test
  void xxh3MatchesTheReferenceVectorForEmptyInput() {
    // XXH3_128bits("") from the xxHash reference implementation: high then low 64 bits.
    assertEquals(
        "xxh3-128:99aa06d3014798d86001c324468d497f",
        DigestAlgorithm.XXH3_128.digest(new byte[0]).toString());
  }

  @Test
  void textFormRoundTripsAndOrdersByBytes() {
    Digest a = DigestAlgorithm.XXH3_128.digest("a".getBytes(US_ASCII));
    Digest b = DigestAlgorithm.XXH3_128.digest("b".getBytes(US_ASCII));
    assertEquals(a, Digest.parse(a.toString()));
    assertEquals(a.hashCode(), Digest.parse(a.toString()).hashCode());
    assertNotEquals(a, b);
    assertEquals(Integer.signum(a.hex().compareTo(b.hex())), Integer.signum(a.compareTo(b)));
  }

  @Test
  void malformedTextIsRefusedWithAMessage() {
    assertThrows(IllegalArgumentException.class, () -> Digest.parse("nocolon"));
    assertThrows(IllegalArgumentException.class, () -> Digest.parse("md5:00"));
    assertThrows(IllegalArgumentException.class, () -> Digest.parse("sha256:zz"));
    assertThrows(IllegalArgumentException.class, () -> Digest.parse("sha256:00"));
  }
}
