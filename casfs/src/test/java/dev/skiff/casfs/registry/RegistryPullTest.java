package dev.skiff.casfs.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.api.ImageRef;
import dev.skiff.casfs.ImageStore;
import dev.skiff.casfs.image.ImportProgress;
import dev.skiff.casfs.image.ImportResult;
import dev.skiff.casfs.testing.DockerRegistry;
import dev.skiff.casfs.testing.OciLayouts;
import dev.skiff.casfs.testing.Tars;
import dev.skiff.casfs.testing.Trees;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Pulls from a real registry (Debian's docker-registry, started here): the image pulled is the same
 * image, to the index digest, as the OCI layout it was pushed from imported directly; layers the
 * store has already cost nothing; a registry that wants credentials gets them from the options or
 * from Docker's config, and says so clearly when it gets none; a missing image says which.
 */
class RegistryPullTest {
  @TempDir Path tmp;

  static final String GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";

  private Path layout(String name, int seed) throws IOException {
    byte[] big = new byte[3 << 20];
    new SplittableRandom(seed).nextBytes(big);
    byte[] base =
        new Tars()
            .dir("etc", 0755)
            .file("etc/os-release", "ID=skiff-test\n")
            .dir("usr", 0755)
            .file("usr/big.bin", big, 0644)
            .symlink("usr/link", "big.bin")
            .bytes();
    byte[] top =
        new Tars()
            .file("etc/app.conf", "seed=" + seed + "\n")
            .file("etc/.wh.os-release", "")
            .bytes();
    return OciLayouts.write(tmp.resolve(name), "t", GZIP, base, top);
  }

  @Test
  void aPulledImageIsTheImageItWasPushedFrom() throws Exception {
    Path oci = layout("app", 1);
    try (DockerRegistry registry = DockerRegistry.start(tmp.resolve("registry"));
        ImageStore store = ImageStore.open(tmp.resolve("home"))) {
      registry.put(oci, "t", "team/app:1");
      ImportResult direct =
          store.importImage(oci + ":t", ImageRef.parse("direct:1"), ImportProgress.NONE);
      RegistryRef ref = RegistryRef.parse("docker://" + registry.address() + "/team/app:1");
      long[] progress = new long[1];
      ImportResult pulled =
          store.pullFromRegistry(
              ref,
              RegistryClient.Options.defaults(),
              ImageRef.parse("pulled:1"),
              (files, bytes, layer, layers) -> progress[0] = bytes);
      assertEquals(direct.index(), pulled.index(), "the same image, to the index digest");
      assertEquals(0, pulled.newChunks(), "every chunk was in the store already");
      assertTrue(progress[0] > 3 << 20, "progress was reported: " + progress[0]);
      assertTrue(pulled.source().startsWith(ref + "@sha256:"), pulled.source());

      // By digest too, through plain importImage.
      String digest = pulled.source().substring(pulled.source().indexOf('@') + 1);
      ImportResult byDigest =
          store.importImage(
              "docker://" + registry.address() + "/team/app@" + digest,
              ImageRef.parse("pulled:2"),
              ImportProgress.NONE);
      assertEquals(direct.index(), byDigest.index());
    }
  }

  @Test
  void dockerManifestsAndZstdLayersPullToTheSameImage() throws Exception {
    Path oci = layout("app", 4);
    try (DockerRegistry registry = DockerRegistry.start(tmp.resolve("registry"));
        ImageStore store = ImageStore.open(tmp.resolve("home"))) {
      store.importImage(oci + ":t", ImageRef.parse("direct:1"), ImportProgress.NONE);
      registry.putWith(List.of("--format", "v2s2"), oci, "t", "team/docker:1");
      // The same layers compressed with zstd, as a layout of their own (skopeo copies as is).
      Path zstd = tmp.resolve("zstd");
      java.util.List<byte[]> layers = new java.util.ArrayList<>();
      for (int i = 0; i < 2; i++) {
        byte[] gz = Files.readAllBytes(OciLayouts.blob(oci, OciLayouts.layerDigest(oci, i)));
        byte[] tar =
            new java.util.zip.GZIPInputStream(new java.io.ByteArrayInputStream(gz)).readAllBytes();
        layers.add(com.github.luben.zstd.Zstd.compress(tar));
      }
      OciLayouts.write(
          zstd,
          "t",
          "application/vnd.oci.image.layer.v1.tar+zstd",
          false,
          layers.toArray(byte[][]::new));
      registry.put(zstd, "t", "team/zstd:1");
      int n = 0;
      for (String repo : List.of("team/docker:1", "team/zstd:1")) {
        RegistryRef ref = RegistryRef.parse("docker://" + registry.address() + "/" + repo);
        RegistryClient.Manifest m =
            new RegistryClient(registry.address(), RegistryClient.Options.defaults()).manifest(ref);
        String layerType = m.layers().get(0).mediaType();
        ImageRef as = ImageRef.parse("p:" + ++n);
        ImportResult pulled =
            store.pullFromRegistry(ref, RegistryClient.Options.defaults(), as, ImportProgress.NONE);
        assertEquals(
            Trees.ofImage(store, ImageRef.parse("direct:1")),
            Trees.ofImage(store, as),
            repo + " (" + m.mediaType() + ", layers " + layerType + ")");
        if (repo.contains("docker")) {
          assertEquals(RegistryClient.DOCKER_MANIFEST, m.mediaType());
          assertEquals("application/vnd.docker.image.rootfs.diff.tar.gzip", layerType);
        } else {
          assertTrue(layerType.endsWith("+zstd"), layerType);
        }
        assertEquals(0, pulled.newChunks(), "the same content as the direct import");
      }
    }
  }

  @Test
  void aRegistryThatWantsCredentialsGetsThemOrSaysWhatToDo() throws Exception {
    Path oci = layout("private", 2);
    try (DockerRegistry registry = DockerRegistry.start(tmp.resolve("registry"), "ada", "s3cret");
        ImageStore store = ImageStore.open(tmp.resolve("home"))) {
      registry.put(oci, "t", "ada/private:1", "ada:s3cret");
      RegistryRef ref = RegistryRef.parse("docker://" + registry.address() + "/ada/private:1");
      RegistryClient.Options none =
          RegistryClient.Options.defaults().withDockerConfig(tmp.resolve("no-config.json"));
      RegistryException refused =
          assertThrows(
              RegistryException.class,
              () -> store.pullFromRegistry(ref, none, ImageRef.parse("p:1"), ImportProgress.NONE));
      assertTrue(
          refused.getMessage().contains("asks for a user name and password"), refused.getMessage());
      assertTrue(store.images().stream().noneMatch(i -> i.ref().name().equals("p")));

      RegistryException wrong =
          assertThrows(
              RegistryException.class,
              () ->
                  store.pullFromRegistry(
                      ref,
                      none.withCredentials("ada:nope"),
                      ImageRef.parse("p:1"),
                      ImportProgress.NONE));
      assertEquals(401, wrong.status(), wrong.getMessage());

      store.pullFromRegistry(
          ref, none.withCredentials("ada:s3cret"), ImageRef.parse("p:1"), ImportProgress.NONE);

      // As docker login leaves them.
      Path config = tmp.resolve("docker/config.json");
      Files.createDirectories(config.getParent());
      Files.writeString(
          config,
          "{\"auths\": {\""
              + registry.address()
              + "\": {\"auth\": \""
              + Base64.getEncoder().encodeToString("ada:s3cret".getBytes(StandardCharsets.UTF_8))
              + "\"}}}");
      store.pullFromRegistry(
          ref,
          RegistryClient.Options.defaults().withDockerConfig(config),
          ImageRef.parse("p:2"),
          ImportProgress.NONE);

      // Through a credential helper (credsStore, or credHelpers for this registry), as Docker
      // Desktop and cloud logins leave them: docker-credential-NAME get, the server on stdin.
      Path helpers = Files.createDirectories(tmp.resolve("helpers"));
      Path asked = tmp.resolve("helper-asked");
      Path helper = helpers.resolve("docker-credential-skifftest");
      Files.writeString(
          helper,
          "#!/bin/sh\n"
              + "[ \"$1\" = get ] || exit 2\n"
              + "read server; echo \"$server\" > "
              + asked
              + "\n"
              + "echo '{\"ServerURL\": \"'$server'\", \"Username\": \"ada\", \"Secret\": \"s3cret\"}'\n");
      helper.toFile().setExecutable(true);
      Path empty = Files.createDirectories(tmp.resolve("helpers-empty"));
      Path nothing = empty.resolve("docker-credential-skiffnone");
      Files.writeString(
          nothing, "#!/bin/sh\necho 'credentials not found in native keychain' >&2\nexit 1\n");
      nothing.toFile().setExecutable(true);
      for (String helperConfig :
          List.of(
              "{\"credsStore\": \"skifftest\"}",
              "{\"credsStore\": \"skiffnone\", \"credHelpers\": {\""
                  + registry.address()
                  + "\": \"skifftest\"}}")) {
        Files.writeString(config, helperConfig);
        Files.deleteIfExists(asked);
        store.pullFromRegistry(
            ref,
            RegistryClient.Options.defaults()
                .withDockerConfig(config)
                .withHelperPath(helpers + ":" + empty),
            ImageRef.parse("p:3"),
            ImportProgress.NONE);
        assertEquals(registry.address(), Files.readString(asked).strip(), helperConfig);
      }
      // A helper that has nothing for the registry, and one that is not installed (said once in
      // the log): as without credentials.
      RegistryClient.Options onlyEmpty =
          RegistryClient.Options.defaults()
              .withDockerConfig(config)
              .withHelperPath(empty.toString());
      for (String credsStore : List.of("skiffnone", "absent")) {
        Files.writeString(config, "{\"credsStore\": \"" + credsStore + "\"}");
        RegistryException e =
            assertThrows(
                RegistryException.class,
                () ->
                    store.pullFromRegistry(
                        ref, onlyEmpty, ImageRef.parse("p:4"), ImportProgress.NONE));
        assertTrue(e.getMessage().contains("asks for a user name and password"), e.getMessage());
      }
    }
  }

  @Test
  void aMissingImageOrTagSaysWhich() throws Exception {
    try (DockerRegistry registry = DockerRegistry.start(tmp.resolve("registry"));
        ImageStore store = ImageStore.open(tmp.resolve("home"))) {
      registry.put(layout("app", 3), "t", "team/app:1");
      RegistryException tag =
          assertThrows(
              RegistryException.class,
              () ->
                  store.pullFromRegistry(
                      RegistryRef.parse("docker://" + registry.address() + "/team/app:2"),
                      RegistryClient.Options.defaults(),
                      ImageRef.parse("x:1"),
                      ImportProgress.NONE));
      assertEquals(404, tag.status());
      assertTrue(tag.getMessage().contains("MANIFEST_UNKNOWN"), tag.getMessage());
      assertTrue(tag.getMessage().contains("/v2/team/app/manifests/2"), tag.getMessage());
      RegistryException repo =
          assertThrows(
              RegistryException.class,
              () ->
                  store.pullFromRegistry(
                      RegistryRef.parse("docker://" + registry.address() + "/nobody/here:1"),
                      RegistryClient.Options.defaults(),
                      ImageRef.parse("x:1"),
                      ImportProgress.NONE));
      assertEquals(404, repo.status(), repo.getMessage());
      assertFalse(store.images().stream().anyMatch(i -> i.ref().name().equals("x")));
    }
  }

  @Test
  void referencesParseAsDockerAndSkopeoWriteThem() {
    assertEquals(
        new RegistryRef("registry-1.docker.io", "library/python", "3.11-slim", null),
        RegistryRef.parse("docker://python:3.11-slim"));
    assertEquals(
        new RegistryRef("registry-1.docker.io", "me/app", "latest", null),
        RegistryRef.parse("docker://me/app"));
    assertEquals(
        new RegistryRef("127.0.0.1:5000", "team/app", "1", null),
        RegistryRef.parse("docker://127.0.0.1:5000/team/app:1"));
    RegistryRef d = RegistryRef.parse("docker://localhost/app@sha256:" + "a".repeat(64));
    assertEquals("localhost", d.registry());
    assertEquals("sha256:" + "a".repeat(64), d.reference());
    assertThrows(IllegalArgumentException.class, () -> RegistryRef.parse("docker://Bad/Name:1"));
    assertThrows(
        IllegalArgumentException.class, () -> RegistryRef.parse("docker://x/app@sha256:12"));
    assertThrows(IllegalArgumentException.class, () -> RegistryRef.parse("oci:/x"));
    assertTrue(RegistryClient.plainHttp("127.0.0.1:5000", RegistryClient.Options.defaults()));
    assertTrue(RegistryClient.plainHttp("localhost:5000", RegistryClient.Options.defaults()));
    assertFalse(
        RegistryClient.plainHttp("registry.example:5000", RegistryClient.Options.defaults()));
    assertTrue(
        RegistryClient.plainHttp(
            "registry.example:5000",
            RegistryClient.Options.defaults().withInsecure("registry.example:5000")));
  }
}
