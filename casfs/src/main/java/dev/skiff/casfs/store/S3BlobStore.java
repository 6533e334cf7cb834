package dev.skiff.casfs.store;

import io.netty.channel.EventLoopGroup;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.util.concurrent.DefaultThreadFactory;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.LongSupplier;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.awscore.retry.AwsRetryStrategy;
import software.amazon.awssdk.core.FileRequestBodyConfiguration;
import software.amazon.awssdk.core.async.AsyncRequestBody;
import software.amazon.awssdk.core.async.AsyncResponseTransformer;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.core.exception.ApiCallAttemptTimeoutException;
import software.amazon.awssdk.core.exception.ApiCallTimeoutException;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.http.nio.netty.NettyNioAsyncHttpClient;
import software.amazon.awssdk.http.nio.netty.SdkEventLoopGroup;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.regions.providers.DefaultAwsRegionProviderChain;
import software.amazon.awssdk.services.s3.S3AsyncClient;
import software.amazon.awssdk.services.s3.model.CompletedPart;
import software.amazon.awssdk.services.s3.model.CreateMultipartUploadResponse;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Response;
import software.amazon.awssdk.services.s3.model.S3Exception;
import software.amazon.awssdk.services.s3.model.S3Object;
import software.amazon.awssdk.services.s3.model.UploadPartResponse;

/**
 * Blobs as objects in an S3-compatible service (AWS S3, R2, MinIO, Ceph, S3Mock), through AWS SDK
 * v2's async client on its Netty HTTP client: ranged GETs, uploads in parts above 16 MiB, a bounded
 * connection pool, per-attempt and per-call timeouts, and the SDK's standard retry strategy
 * (exponential backoff with jitter, retryable errors only). A store that is down makes a call fail
 * once the call timeout has passed; the calls after it fail at once, but for one at a time after a
 * cool-down, until one gets an answer ({@link StoreHealth}).
 *
 * <p>Uploads in parts are driven here rather than by the SDK's multipart client, so that one that
 * fails, is interrupted, or is still open when the JVM is asked to stop (a shutdown hook, added
 * with the first such upload and removed by {@link #close}) is aborted: no parts are left to bill.
 * Only a process killed outright leaves them, for a bucket lifecycle rule to remove.
 *
 * <p>Thread safe.
 */
final class S3BlobStore implements BlobStore {
  private static final Logger LOG = LoggerFactory.getLogger(S3BlobStore.class);

  /** S3's limit on the parts of one upload. */
  private static final int MAX_PARTS = 10_000;

  /** How long aborting an upload may take, even when the call timeout is longer. */
  private static final Duration ABORT_WAIT = Duration.ofSeconds(10);

  private final S3AsyncClient client;
  private final EventLoopGroup eventLoops;
  private final S3Location location;
  private final Path scratch;
  private final Settings settings;
  private final StoreHealth health;

  /**
   * Uploads started and neither completed nor aborted, by id; whoever removes one completes or
   * aborts it.
   */
  private final ConcurrentHashMap<String, OpenUpload> openUploads = new ConcurrentHashMap<>();

  private final Set<StartingUpload> startingUploads = ConcurrentHashMap.newKeySet();

  private final Thread abortOnExit = new Thread(this::abortOpenUploads, "skiff-s3-abort-uploads");
  private final AtomicBoolean abortOnExitAdded = new AtomicBoolean();
  private final AtomicBoolean closed = new AtomicBoolean();
  private volatile boolean stopping;

  /**
   * Connection, timeout and retry settings; {@code coolDown}: how long calls fail at once after one
   * got no answer, before the next one tries; blobs above {@code partThreshold} bytes go up in
   * parts of {@code partSize} (or more, for very large blobs), {@code partsInFlight} at a time.
   */
  record Settings(
      int maxConnections,
      Duration connectTimeout,
      Duration attemptTimeout,
      Duration callTimeout,
      int maxAttempts,
      Duration coolDown,
      long partThreshold,
      long partSize,
      int partsInFlight) {
    static Settings defaults() {
      return new Settings(
          64,
          Duration.ofSeconds(5),
          Duration.ofSeconds(20),
          Duration.ofSeconds(60),
          4,
          Duration.ofSeconds(5),
          16L << 20,
          8L << 20,
          4);
    }

    /** These settings with a bound on each call, retries included, and a number of attempts. */
    Settings withCallTimeout(Duration call, int attempts) {
      Duration attempt = call.compareTo(attemptTimeout) < 0 ? call : attemptTimeout;
      return new Settings(
          maxConnections,
          connectTimeout,
          attempt,
          call,
          attempts,
          coolDown,
          partThreshold,
          partSize,
          partsInFlight);
    }
  }

  /** A multipart upload of blob {@code name} asked for, whose id has not come back yet. */
  private record StartingUpload(
      String name, String key, CompletableFuture<CreateMultipartUploadResponse> answer) {}

  /** A multipart upload of blob {@code name} begun, with its parts still on their way. */
  private record OpenUpload(
      String name, String key, String uploadId, Set<CompletableFuture<?>> partsInFlight) {
    OpenUpload(String name, String key, String uploadId) {
      this(name, key, uploadId, ConcurrentHashMap.newKeySet());
    }

    /** Cancels the parts still on their way, so that none is sent on after the abort. */
    void cancelParts() {
      for (CompletableFuture<?> f : List.copyOf(partsInFlight)) {
        f.cancel(true);
      }
    }
  }

  /**
   * @param nanoClock time for the health state, as {@link System#nanoTime}
   */
  S3BlobStore(
      S3Location location,
      Settings settings,
      AwsCredentialsProvider credentials,
      Path scratch,
      LongSupplier nanoClock) {
    this.location = location;
    this.scratch = scratch;
    this.settings = settings;
    this.health = new StoreHealth(location.toString(), settings.coolDown(), nanoClock);
    // Our own event loops, so that close() can stop them at once: the SDK's own group waits a
    // two-second quiet period, which every push, pull and unmount would pay on exit.
    this.eventLoops =
        new NioEventLoopGroup(
            Math.min(4, Runtime.getRuntime().availableProcessors() * 2),
            new DefaultThreadFactory("skiff-s3", true));
    var builder =
        S3AsyncClient.builder()
            .httpClientBuilder(
                NettyNioAsyncHttpClient.builder()
                    .eventLoopGroup(SdkEventLoopGroup.create(eventLoops))
                    .maxConcurrency(settings.maxConnections())
                    .connectionTimeout(settings.connectTimeout())
                    .readTimeout(settings.attemptTimeout())
                    .writeTimeout(settings.attemptTimeout()))
            .credentialsProvider(
                credentials != null ? credentials : DefaultCredentialsProvider.builder().build())
            .region(region(location.region()))
            .forcePathStyle(location.pathStyle())
            // Skiff checks every chunk against its own digest; the SDK's newer default checksums
            // are
            // not understood by every S3-compatible service.
            .requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
            .responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED)
            // Uploads in parts are ours (putInParts): the SDK's multipart client leaves an
            // interrupted
            // upload open in the bucket, and logs its own failures with stack traces.
            .multipartEnabled(false)
            .overrideConfiguration(
                c ->
                    c.apiCallAttemptTimeout(settings.attemptTimeout())
                        .apiCallTimeout(settings.callTimeout())
                        .retryStrategy(
                            AwsRetryStrategy.standardRetryStrategy().toBuilder()
                                .maxAttempts(settings.maxAttempts())
                                .build()));
    if (location.endpoint() != null) {
      builder.endpointOverride(location.endpoint());
    }
    this.client = builder.build();
  }

  private static Region region(String explicit) {
    if (explicit != null && !explicit.isBlank()) {
      return Region.of(explicit);
    }
    try {
      return new DefaultAwsRegionProviderChain().getRegion();
    } catch (SdkException e) {
      return Region.US_EAST_1;
    }
  }

  @Override
  public int read(String name, long offset, int length, ByteBuffer dst) throws IOException {
    if (length <= 0) {
      return 0;
    }
    int want = Math.min(length, dst.remaining());
    String key = location.key(BlobNames.check(name));
    ByteBuffer got;
    try {
      got =
          call(
                  "GET " + name + " @" + offset,
                  () ->
                      client.getObject(
                          r ->
                              r.bucket(location.bucket())
                                  .key(key)
                                  .range("bytes=" + offset + "-" + (offset + want - 1)),
                          AsyncResponseTransformer.toBytes()))
              .asByteBuffer();
    } catch (BlobNotFoundException e) {
      throw e;
    } catch (RangeNotSatisfiable e) {
      return 0;
    }
    int n = Math.min(got.remaining(), want);
    dst.put(got.limit(got.position() + n));
    return n;
  }

  /**
   * One GET for the whole object: no HEAD first (a round trip saved on every tag, index and trace).
   */
  @Override
  public Optional<byte[]> readAll(String name) throws IOException {
    String key = location.key(BlobNames.check(name));
    try {
      return Optional.of(
          call(
                  "GET " + name,
                  () ->
                      client.getObject(
                          r -> r.bucket(location.bucket()).key(key),
                          AsyncResponseTransformer.toBytes()))
              .asByteArrayUnsafe());
    } catch (BlobNotFoundException e) {
      return Optional.empty();
    }
  }

  @Override
  public Optional<Long> size(String name) throws IOException {
    String key = location.key(BlobNames.check(name));
    try {
      return Optional.of(
          call("HEAD " + name, () -> client.headObject(r -> r.bucket(location.bucket()).key(key)))
              .contentLength());
    } catch (BlobNotFoundException e) {
      return Optional.empty();
    }
  }

  @Override
  public void put(String name, InputStream content) throws IOException {
    Files.createDirectories(scratch);
    Path tmp = Files.createTempFile(scratch, "put-", ".blob");
    try {
      Files.copy(content, tmp, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
      putFile(name, tmp);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  /**
   * S3 makes a PUT visible whole or not at all, multipart included (completion is atomic). Blobs
   * above the part threshold go up in parts; an upload that fails or is interrupted is aborted, and
   * so is one still open when the JVM is asked to stop (Ctrl-C, SIGTERM) or the store closed.
   */
  @Override
  public void putFile(String name, Path file) throws IOException {
    String key = location.key(BlobNames.check(name));
    long size = Files.size(file);
    if (size <= settings.partThreshold()) {
      call(
          "PUT " + name,
          () ->
              client.putObject(
                  r -> r.bucket(location.bucket()).key(key).contentLength(size),
                  AsyncRequestBody.fromFile(file)));
      return;
    }
    putInParts(name, key, file, size);
  }

  private record PartInFlight(int number, Pending<UploadPartResponse> pending) {}

  /**
   * CreateMultipartUpload, the parts (a bounded number at a time), then Complete; Abort on any
   * failure.
   */
  private void putInParts(String name, String key, Path file, long size) throws IOException {
    long partSize = Math.max(settings.partSize(), (size + MAX_PARTS - 1) / MAX_PARTS);
    int parts = Math.toIntExact((size + partSize - 1) / partSize);
    if (abortOnExitAdded.compareAndSet(false, true)) {
      try {
        Runtime.getRuntime().addShutdownHook(abortOnExit);
      } catch (IllegalStateException exiting) {
        stopping = true;
      }
    }
    if (stopping || closed.get()) {
      throw new InterruptedIOException("PUT " + name + " interrupted: the process is stopping");
    }
    Pending<CreateMultipartUploadResponse> starting =
        start(
            "START UPLOAD " + name,
            () -> client.createMultipartUpload(r -> r.bucket(location.bucket()).key(key)));
    StartingUpload begun = new StartingUpload(name, key, starting.future);
    startingUploads.add(begun);
    OpenUpload upload;
    try {
      // The server may have begun the upload before an interrupt comes: wait for its id (an
      // interrupt is kept, and shortens the wait to ABORT_WAIT), so that it can be aborted below.
      if (awaitEvenIfInterrupted(starting.future)) {
        Thread.currentThread().interrupt(); // finish() now answers at once either way
      }
      upload = new OpenUpload(name, key, finish(starting).uploadId());
      openUploads.put(upload.uploadId(), upload);
    } finally {
      startingUploads.remove(begun);
    }
    String uploadId = upload.uploadId();
    ArrayDeque<PartInFlight> inFlight = new ArrayDeque<>();
    List<CompletedPart> done = new ArrayList<>(parts);
    try {
      if (Thread.currentThread().isInterrupted()) {
        throw new InterruptedIOException("PUT " + name + " interrupted");
      }
      for (int i = 1; i <= parts; i++) {
        if (inFlight.size() >= settings.partsInFlight()) {
          done.add(completed(inFlight.poll()));
        }
        if (stopping || closed.get()) { // aborted meanwhile: no part after the abort
          throw new InterruptedIOException("PUT " + name + " interrupted: the process is stopping");
        }
        int n = i;
        long offset = (n - 1) * partSize;
        long length = Math.min(partSize, size - offset);
        Pending<UploadPartResponse> part =
            start(
                "PUT " + name + " part " + n + "/" + parts,
                () ->
                    client.uploadPart(
                        r ->
                            r.bucket(location.bucket())
                                .key(key)
                                .uploadId(uploadId)
                                .partNumber(n)
                                .contentLength(length),
                        AsyncRequestBody.fromFile(
                            FileRequestBodyConfiguration.builder()
                                .path(file)
                                .position(offset)
                                .numBytesToRead(length)
                                .build())));
        upload.partsInFlight().add(part.future);
        part.future.whenComplete((r, e) -> upload.partsInFlight().remove(part.future));
        inFlight.add(new PartInFlight(n, part));
      }
      while (!inFlight.isEmpty()) {
        done.add(completed(inFlight.poll()));
      }
      call(
          "COMPLETE UPLOAD " + name,
          () ->
              client.completeMultipartUpload(
                  r ->
                      r.bucket(location.bucket())
                          .key(key)
                          .uploadId(uploadId)
                          .multipartUpload(m -> m.parts(done))));
      openUploads.remove(uploadId);
    } catch (IOException | RuntimeException | Error e) {
      for (PartInFlight p : inFlight) {
        p.pending().cancel(); // every part not yet answered
      }
      if (openUploads.remove(uploadId, upload)) {
        String notAborted = abort(upload);
        if (notAborted != null) {
          String m =
              e.getMessage()
                  + "; and its upload could not be aborted ("
                  + notAborted
                  + "): the parts sent"
                  + " stay in the bucket until a lifecycle rule removes them (upload id "
                  + uploadId
                  + ")";
          throw e instanceof InterruptedIOException
              ? (IOException) new InterruptedIOException(m).initCause(e)
              : new IOException(m, e);
        }
      }
      throw e;
    }
  }

  /**
   * Waits for a call to end; once interrupted, at most {@link #ABORT_WAIT} more. True if the thread
   * was interrupted (its flag is cleared).
   */
  private static boolean awaitEvenIfInterrupted(CompletableFuture<?> f) {
    boolean interrupted = false;
    long deadline = Long.MAX_VALUE;
    while (!f.isDone()) {
      try {
        if (interrupted) {
          f.get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        } else {
          f.get();
        }
      } catch (InterruptedException e) {
        interrupted = true;
        deadline = System.nanoTime() + ABORT_WAIT.toNanos();
      } catch (ExecutionException | CancellationException | TimeoutException e) {
        break;
      }
    }
    return interrupted;
  }

  private CompletedPart completed(PartInFlight p) throws IOException {
    UploadPartResponse r = finish(p.pending());
    return CompletedPart.builder().partNumber(p.number()).eTag(r.eTag()).build();
  }

  /**
   * Aborts an upload and waits for it, at most {@link #ABORT_WAIT}, even on an interrupted thread
   * (whose interrupt is kept); null once the upload is gone, else why it may not be.
   */
  private String abort(OpenUpload u) {
    boolean interrupted =
        Thread.interrupted(); // the SDK refuses to start a call on an interrupted thread
    try {
      long deadline = System.nanoTime() + ABORT_WAIT.toNanos();
      String notAborted = awaitCall(startAbort(u), deadline);
      return notAborted != null ? notAborted : confirmGone(u, deadline);
    } finally {
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
  }

  private CompletableFuture<?> startAbort(OpenUpload u) {
    try {
      return client.abortMultipartUpload(
          r -> r.bucket(location.bucket()).key(u.key()).uploadId(u.uploadId()));
    } catch (RuntimeException e) {
      return CompletableFuture.failedFuture(e);
    }
  }

  /**
   * Waits for a call of an upload's clean-up until {@code deadline} ({@link System#nanoTime}): null
   * on an answer, "no such upload" (404) included; else why none came.
   */
  private static String awaitCall(CompletableFuture<?> f, long deadline) {
    try {
      f.get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
      return null;
    } catch (ExecutionException e) {
      if (e.getCause() instanceof S3Exception s && s.statusCode() == 404) {
        return null; // no such upload: aborted already
      }
      return rootMessage(e.getCause());
    } catch (TimeoutException e) {
      f.cancel(true);
      return "no answer within " + seconds(ABORT_WAIT);
    } catch (CancellationException e) {
      return "cancelled";
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "interrupted";
    }
  }

  /**
   * S3 may still store a part that was on its way when the abort came, and then keeps it until the
   * upload is aborted again: asks for the upload's parts, and aborts once more while any are
   * listed. Null once S3 says the upload does not exist.
   */
  private String confirmGone(OpenUpload u, long deadline) {
    for (int aborts = 1; ; aborts++) {
      CompletableFuture<?> list;
      try {
        list =
            client.listParts(r -> r.bucket(location.bucket()).key(u.key()).uploadId(u.uploadId()));
      } catch (RuntimeException e) {
        list = CompletableFuture.failedFuture(e);
      }
      String failed = awaitCall(list, deadline);
      if (failed != null && forbidden(list)) {
        return null; // aborted; a policy without s3:ListMultipartUploadParts cannot confirm it
      }
      if (failed != null || list.isCompletedExceptionally()) {
        return failed;
      }
      if (aborts == 3) {
        return "it is still there after " + aborts + " aborts";
      }
      String notAborted = awaitCall(startAbort(u), deadline);
      if (notAborted != null) {
        return notAborted;
      }
    }
  }

  private static boolean forbidden(CompletableFuture<?> f) {
    try {
      f.getNow(null);
      return false;
    } catch (java.util.concurrent.CompletionException e) {
      return e.getCause() instanceof S3Exception s && s.statusCode() == 403;
    } catch (CancellationException e) {
      return false;
    }
  }

  /** Aborts every upload still open (the JVM is stopping, or the store closing), in parallel. */
  private void abortOpenUploads() {
    stopping = true;
    // Those being begun first: an upload moves from there to openUploads, never back.
    List<StartingUpload> starting = List.copyOf(startingUploads);
    List<OpenUpload> mine = new ArrayList<>();
    List<CompletableFuture<?>> aborts = new ArrayList<>();
    java.util.Set<String> seen = new java.util.HashSet<>();
    for (String id : List.copyOf(openUploads.keySet())) {
      OpenUpload u = openUploads.remove(id);
      if (u != null) {
        u.cancelParts(); // before the abort, so that no part is sent on after it
        seen.add(id);
        mine.add(u);
        aborts.add(startAbort(u));
      }
    }
    long deadline = System.nanoTime() + ABORT_WAIT.toNanos();
    // Uploads whose id is still on its way are aborted as soon as it comes.
    for (StartingUpload s : starting) {
      if (awaitCall(s.answer(), deadline) == null && !s.answer().isCompletedExceptionally()) {
        OpenUpload u = new OpenUpload(s.name(), s.key(), s.answer().join().uploadId());
        if (seen.add(u.uploadId())) {
          OpenUpload open = openUploads.remove(u.uploadId());
          if (open != null) {
            open.cancelParts();
          }
          mine.add(u);
          aborts.add(startAbort(u));
        }
      }
    }
    for (int i = 0; i < mine.size(); i++) {
      OpenUpload u = mine.get(i);
      String notAborted = awaitCall(aborts.get(i), deadline);
      if (notAborted == null) {
        notAborted = confirmGone(u, deadline);
      }
      if (notAborted == null) {
        LOG.debug("aborted the unfinished upload of {} to {}", u.name(), location);
      } else {
        LOG.warn(
            "could not abort the unfinished upload of {} to {} ({}): the parts sent stay in the bucket until a"
                + " lifecycle rule removes them (upload id {})",
            u.name(),
            location,
            notAborted,
            u.uploadId());
      }
    }
  }

  @Override
  public List<String> list(String prefix) throws IOException {
    List<String> out = new ArrayList<>();
    String base = location.key(prefix);
    String strip = location.prefix().isEmpty() ? "" : location.prefix() + "/";
    String token = null;
    do {
      String t = token;
      ListObjectsV2Response page =
          call(
              "LIST " + prefix,
              () ->
                  client.listObjectsV2(
                      r -> r.bucket(location.bucket()).prefix(base).continuationToken(t)));
      for (S3Object o : page.contents()) {
        out.add(o.key().substring(strip.length()));
      }
      token = Boolean.TRUE.equals(page.isTruncated()) ? page.nextContinuationToken() : null;
    } while (token != null);
    out.sort(null);
    return out;
  }

  @Override
  public boolean delete(String name) throws IOException {
    if (size(name).isEmpty()) {
      return false;
    }
    String key = location.key(BlobNames.check(name));
    call("DELETE " + name, () -> client.deleteObject(r -> r.bucket(location.bucket()).key(key)));
    return true;
  }

  @Override
  public String describe() {
    return location.toString();
  }

  /** Aborts uploads still open, then closes the client. Idempotent. */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    if (abortOnExitAdded.get()) {
      try {
        Runtime.getRuntime().removeShutdownHook(abortOnExit);
      } catch (IllegalStateException exiting) {
        // The hook may be aborting uploads with this client right now: let it finish first.
        try {
          abortOnExit.join(ABORT_WAIT.toMillis() + 1000);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
    }
    abortOpenUploads();
    client.close();
    // A quiet period, not none: the client hands its pool's channel releases to the event loops
    // after close() returns, and a loop already gone rejects them (Netty logs each as a warning
    // with its stack). Not waited for: a process that exits does not wait on it.
    eventLoops.shutdownGracefully(100, 1000, TimeUnit.MILLISECONDS);
  }

  private static final class RangeNotSatisfiable extends IOException {
    private static final long serialVersionUID = 1L;
  }

  /** A call sent and not yet waited for. */
  private final class Pending<T> {
    final String what;
    final StoreHealth.Admission admitted;
    final CompletableFuture<T> future;

    Pending(String what, StoreHealth.Admission admitted, CompletableFuture<T> future) {
      this.what = what;
      this.admitted = admitted;
      this.future = future;
    }

    void cancel() {
      future.cancel(true);
      health.abandoned(admitted);
    }
  }

  /** Makes one call and waits for it; see {@link #start} and {@link #finish}. */
  private <T> T call(String what, Supplier<CompletableFuture<T>> request) throws IOException {
    return finish(start(what, request));
  }

  /** Sends a call, unless the store is down: then it fails at once (see {@link StoreHealth}). */
  private <T> Pending<T> start(String what, Supplier<CompletableFuture<T>> request)
      throws IOException {
    StoreHealth.Admission admitted = health.admit(what);
    try {
      return new Pending<>(what, admitted, request.get());
    } catch (RuntimeException e) {
      health.abandoned(admitted);
      throw e;
    }
  }

  /**
   * Waits for a call; maps S3's answers to the store's exceptions, with the operation named, and
   * tells the health state whether the store answered.
   */
  private <T> T finish(Pending<T> p) throws IOException {
    String what = p.what;
    StoreHealth.Admission admitted = p.admitted;
    CompletableFuture<T> f = p.future;
    try {
      T answer = f.get();
      health.answered(admitted);
      return answer;
    } catch (InterruptedException e) {
      f.cancel(true);
      health.abandoned(admitted);
      Thread.currentThread().interrupt();
      throw new InterruptedIOException(what + " interrupted");
    } catch (CancellationException e) {
      health.abandoned(admitted);
      throw new InterruptedIOException(what + " cancelled");
    } catch (ExecutionException e) {
      Throwable c = e.getCause();
      if (c instanceof S3Exception s) {
        health.answered(admitted);
        if (s.statusCode() == 404 && "NoSuchBucket".equals(errorCode(s))) {
          throw new IOException(
              what
                  + ": bucket "
                  + location.bucket()
                  + " does not exist"
                  + (location.endpoint() == null ? "" : " at " + location.endpoint()));
        }
        if (s.statusCode() == 404 && (errorCode(s) == null || "NoSuchKey".equals(errorCode(s)))) {
          throw new BlobNotFoundException(describe(), what.substring(what.indexOf(' ') + 1));
        }
        if (s.statusCode() == 416) {
          throw new RangeNotSatisfiable();
        }
        String detail =
            s.awsErrorDetails() != null && s.awsErrorDetails().errorMessage() != null
                ? s.awsErrorDetails().errorMessage()
                : s.getMessage();
        throw new IOException(
            what
                + " on "
                + describe()
                + " failed: "
                + s.statusCode()
                + " "
                + (errorCode(s) != null ? errorCode(s) + ": " : "")
                + firstLine(detail),
            s);
      }
      if (unanswered(c)) {
        String why =
            c instanceof ApiCallTimeoutException
                ? "timed out after " + seconds(settings.callTimeout())
                : c instanceof ApiCallAttemptTimeoutException
                    ? "timed out (each attempt after " + seconds(settings.attemptTimeout()) + ")"
                    : "failed: " + rootMessage(c);
        health.unanswered(admitted, what + " " + why);
        throw new IOException(what + " on " + describe() + " " + why, c);
      }
      health.abandoned(admitted);
      if (String.valueOf(c.getMessage()).startsWith("Unable to load credentials")) {
        throw new IOException(
            what
                + " on "
                + describe()
                + " failed: no credentials found (set AWS_ACCESS_KEY_ID and"
                + " AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or write ~/.aws/credentials)",
            c);
      }
      throw new IOException(
          what + " on " + describe() + " failed: " + firstLine(String.valueOf(c.getMessage())), c);
    }
  }

  /** Whether a failure means the store gave no answer: a timeout, or a connection that failed. */
  private static boolean unanswered(Throwable c) {
    for (Throwable t = c; t != null; t = t.getCause()) {
      if (t instanceof ApiCallTimeoutException
          || t instanceof ApiCallAttemptTimeoutException
          || t instanceof IOException
          || t instanceof io.netty.channel.ChannelException
          || t instanceof java.util.concurrent.TimeoutException) {
        return true;
      }
    }
    return false;
  }

  private static String seconds(Duration d) {
    return d.toMillis() % 1000 == 0 ? d.toSeconds() + " s" : d.toMillis() + " ms";
  }

  private static String errorCode(S3Exception s) {
    return s.awsErrorDetails() == null ? null : s.awsErrorDetails().errorCode();
  }

  /** The innermost message of a failure, for one-line reports. */
  private static String rootMessage(Throwable c) {
    Throwable t = c;
    while (t.getCause() != null && t.getCause() != t) {
      t = t.getCause();
    }
    String m = t.getMessage();
    return firstLine(m == null || m.isBlank() ? t.getClass().getSimpleName() : m);
  }

  private static String firstLine(String s) {
    if (s == null) {
      return "";
    }
    int nl = s.indexOf('\n');
    return nl < 0 ? s : s.substring(0, nl);
  }

  static URI uri(String s) {
    return s == null || s.isBlank() ? null : URI.create(s);
  }
}
