package dev.skiff.scheduler.client;

import io.grpc.CallCredentials;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.concurrent.Executor;

/**
 * Bearer tokens: clients and workers each have a kind of their own, and a call without the right
 * one is refused before it reaches a service ({@code UNAUTHENTICATED}).
 */
public final class Tokens {
  static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
  private static final SecureRandom RANDOM = new SecureRandom();

  private Tokens() {}

  /** A new random token (32 bytes, hex). */
  public static String generate() {
    byte[] b = new byte[32];
    RANDOM.nextBytes(b);
    return HexFormat.of().formatHex(b);
  }

  /** Refuses calls that do not carry {@code token}. */
  public static ServerInterceptor require(String token) {
    byte[] want = ("Bearer " + token).getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    return new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(
          ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
        String got = headers.get(AUTHORIZATION);
        if (got == null
            || !MessageDigest.isEqual(
                want, got.getBytes(java.nio.charset.StandardCharsets.US_ASCII))) {
          call.close(
              Status.UNAUTHENTICATED.withDescription("a valid token is required"), new Metadata());
          return new ServerCall.Listener<>() {};
        }
        return next.startCall(call, headers);
      }
    };
  }

  /** Credentials that present {@code token} on every call. */
  public static CallCredentials bearer(String token) {
    return new CallCredentials() {
      @Override
      public void applyRequestMetadata(
          RequestInfo info, Executor appExecutor, MetadataApplier applier) {
        Metadata m = new Metadata();
        m.put(AUTHORIZATION, "Bearer " + token);
        applier.apply(m);
      }
    };
  }
}
