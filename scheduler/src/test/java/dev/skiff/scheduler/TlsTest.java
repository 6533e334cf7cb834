package dev.skiff.scheduler;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skiff.scheduler.client.ControlClient;
import dev.skiff.scheduler.client.Tokens;
import dev.skiff.scheduler.control.SchedulerServer;
import dev.skiff.scheduler.state.LmdbControlState;
import io.grpc.StatusRuntimeException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The scheduler with a certificate: TLS clients that trust it get in, others do not. */
class TlsTest {
  @TempDir Path tmp;

  /** A self-signed certificate for 127.0.0.1 and its PKCS#8 key, made with openssl. */
  private Path[] certificate(String name) throws Exception {
    Path cert = tmp.resolve(name + ".pem");
    Path key = tmp.resolve(name + ".key");
    Process p =
        new ProcessBuilder(
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-keyout",
                key.toString(),
                "-out",
                cert.toString(),
                "-subj",
                "/CN=skiff-test",
                "-addext",
                "subjectAltName=IP:127.0.0.1")
            .redirectErrorStream(true)
            .start();
    String out = new String(p.getInputStream().readAllBytes());
    Assumptions.assumeTrue(
        p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0, "openssl: " + out);
    return new Path[] {cert, key};
  }

  @Test
  void onlyClientsThatTrustTheCertificateGetIn() throws Exception {
    Path[] mine = certificate("server");
    Path[] other = certificate("other");
    String token = Tokens.generate();
    try (LmdbControlState state = LmdbControlState.open(tmp.resolve("state"));
        SchedulerServer server =
            SchedulerServer.start(
                state,
                new SchedulerServer.Options(
                    new InetSocketAddress("127.0.0.1", 0),
                    token,
                    Tokens.generate(),
                    mine[0],
                    mine[1]))) {
      String target = "127.0.0.1:" + server.port();
      try (ControlClient trusted = ControlClient.connect(target, token, mine[0])) {
        assertEquals(0, trusted.functions().size());
      }
      try (ControlClient plain = ControlClient.connect(target, token, null)) {
        assertThrows(StatusRuntimeException.class, plain::functions);
      }
      try (ControlClient wrongCa = ControlClient.connect(target, token, other[0])) {
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class, wrongCa::functions);
        assertEquals(io.grpc.Status.Code.UNAVAILABLE, e.getStatus().getCode());
      }
      try (ControlClient badToken = ControlClient.connect(target, "nope", mine[0])) {
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class, badToken::functions);
        assertTrue(e.getStatus().getCode() == io.grpc.Status.Code.UNAUTHENTICATED);
      }
    }
  }
}
