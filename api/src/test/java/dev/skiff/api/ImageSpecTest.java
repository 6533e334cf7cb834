package dev.skiff.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class ImageSpecTest {
  @Test
  void everyFormParsesAndPrintsBack() {
    for (String s :
        List.of(
            "py:3.11",
            "team/app:1",
            "s3://bucket/p/q/app:2",
            "s3://bucket/app:latest",
            "/srv/rootfs")) {
      assertEquals(s, ImageSpec.parse(s).toString());
    }
    assertEquals("py:latest", ImageSpec.parse("py").toString());
  }

  @Test
  void eachFormIsItsOwnType() {
    ImageSpec.Stored s = assertInstanceOf(ImageSpec.Stored.class, ImageSpec.parse("py:3.11"));
    assertEquals(new ImageRef("py", "3.11"), s.ref());
    ImageSpec.InBucket b =
        assertInstanceOf(ImageSpec.InBucket.class, ImageSpec.parse("s3://bkt/pre/fix/img:1"));
    assertEquals("s3://bkt/pre/fix", b.bucketUrl());
    assertEquals(Optional.of(new ImageRef("img", "1")), b.localRef());
    ImageSpec.HostDirectory d =
        assertInstanceOf(ImageSpec.HostDirectory.class, ImageSpec.parse("/srv/a/../rootfs"));
    assertEquals(Path.of("/srv/rootfs"), d.dir());
    assertTrue(d.localRef().isEmpty());
  }

  @Test
  void badSpecsSayWhatIsAccepted() {
    for (String bad :
        List.of(
            "",
            "Upper:1",
            "s3://",
            "s3://bucket-only",
            "s3://bucket/",
            "docker://x/y:1",
            "a:b:c!")) {
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> ImageSpec.parse(bad), bad);
      assertTrue(e.getMessage().contains("want") || e.getMessage().contains("bad"), e.getMessage());
    }
  }

  @Test
  void resourcesParseSizesAndRefuseNonsense() {
    assertEquals(new Resources(1.5, 1L << 30), Resources.of("1.5", "1G"));
    assertEquals(512L << 20, Resources.parseBytes("512MiB"));
    assertEquals(20L << 30, Resources.parseBytes("20gb"));
    assertEquals(1048576, Resources.parseBytes("1048576"));
    assertEquals(Resources.UNLIMITED, Resources.of(null, ""));
    for (String bad : List.of("-1G", "lots", "1Q", "NaN")) {
      assertThrows(IllegalArgumentException.class, () -> Resources.parseBytes(bad), bad);
    }
    assertThrows(IllegalArgumentException.class, () -> Resources.of("-2", null));
    assertThrows(IllegalArgumentException.class, () -> Resources.of("two", null));
  }
}
