package dev.skiff.sdk;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JavaType;
import dev.skiff.scheduler.proto.Input;
import dev.skiff.scheduler.proto.Result;
import dev.skiff.sdk.runner.JavaRunner;
import io.grpc.StatusRuntimeException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.Spliterator;
import java.util.Spliterators;
import java.util.TreeMap;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.Executors;
import java.util.function.Supplier;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;

/**
 * A function on the platform: defined in this program ({@link App#function}) or deployed by anyone
 * in any language and looked up by name ({@link #lookup}). Calls block the calling thread (a
 * virtual thread is fine) or return {@link CompletableFuture}s; each takes one input and returns
 * one result, carried as JSON. Thread safe.
 *
 * @param <I> the input type
 * @param <O> the result type
 */
public final class SkiffFunction<I, O> {
  private static final Executor ASYNC =
      Executors.newThreadPerTaskExecutor(Thread.ofVirtual().name("skiff-call-", 0).factory());

  private final Supplier<SkiffClient> client;
  private final String id;
  private final JavaType type;
  private final FunctionBuilder<I, O> definition;
  private Object instance; // for local() of a function on an instance; guarded by this

  SkiffFunction(
      Supplier<SkiffClient> client, String id, JavaType type, FunctionBuilder<I, O> definition) {
    this.client = client;
    this.id = id;
    this.type = type;
    this.definition = definition;
  }

  /**
   * A deployed function {@code app}/{@code name}, in any language, through the shared connection
   * ({@link SkiffClient#connect()}): its input is sent as JSON, its result read as {@code output}.
   */
  public static <I, O> SkiffFunction<I, O> lookup(
      String app, String name, Class<I> input, Class<O> output) {
    return lookup(SkiffClient::shared, app, name, Codec.type(output));
  }

  /** As {@link #lookup(String, String, Class, Class)}, for a generic result type. */
  public static <I, O> SkiffFunction<I, O> lookup(
      String app, String name, Class<I> input, TypeReference<O> output) {
    return lookup(
        SkiffClient::shared, app, name, Codec.JSON.getTypeFactory().constructType(output));
  }

  /** As {@link #lookup(String, String, Class, Class)} through {@code client}. */
  public static <I, O> SkiffFunction<I, O> lookup(
      SkiffClient client, String app, String name, Class<I> input, Class<O> output) {
    return lookup(() -> client, app, name, Codec.type(output));
  }

  private static <I, O> SkiffFunction<I, O> lookup(
      Supplier<SkiffClient> client, String app, String name, JavaType output) {
    App.checkName(app, "app");
    App.checkName(name, "function");
    return new SkiffFunction<>(client, app + "/" + name, output, null);
  }

  /** The function's id, {@code app/name}. */
  public String id() {
    return id;
  }

  FunctionBuilder<I, O> definition() {
    return definition;
  }

  /**
   * Calls the function and waits for its result.
   *
   * @throws RemoteException the handler threw
   * @throws FunctionTimeoutException the handler ran past its timeout
   * @throws java.util.concurrent.CancellationException the call was cancelled
   * @throws InternalFailureException the platform could not run it
   * @throws IllegalArgumentException the input cannot be sent (named in the message)
   */
  public O remote(I input) {
    return call(client.get(), Codec.input(input, id));
  }

  /** Calls the function without blocking this thread; the future ends as {@link #remote} would. */
  public CompletableFuture<O> remoteAsync(I input) {
    Input in = Codec.input(input, id); // a bad input fails here, at the call site
    SkiffClient c = client.get();
    return CompletableFuture.supplyAsync(() -> call(c, in), ASYNC);
  }

  /** One call through {@code c}, waiting for its outcome. */
  private O call(SkiffClient c, Input in) {
    Result r;
    try {
      r = c.control().call(id, in, null);
    } catch (StatusRuntimeException e) {
      throw c.translate(e, "calling " + id);
    }
    return Codec.outcome(r, type, id);
  }

  /** Starts a call and returns at once; its result comes from the returned handle. */
  public FunctionCall<O> spawn(I input) {
    Input in = Codec.input(input, id);
    SkiffClient c = client.get();
    try {
      return new FunctionCall<>(c, c.control().spawn(id, in), id, type);
    } catch (StatusRuntimeException e) {
      throw c.translate(e, "spawning " + id);
    }
  }

  /** A call of this function started earlier (by {@link #spawn}, here or elsewhere), by its id. */
  public FunctionCall<O> call(String callId) {
    return new FunctionCall<>(client.get(), callId, id, type);
  }

  /**
   * Runs the function over every input, in parallel across containers, and streams the results in
   * input order; the first failed call's exception is thrown when its place is reached. Inputs are
   * read as the map goes (at most 10,000 outstanding), so a long or endless iterable is fine; if
   * the iterable throws, the map stops and the stream throws that exception once the results before
   * it are read. Close the stream (or read it to the end) to let go of the map early.
   */
  public Stream<O> map(Iterable<? extends I> inputs) {
    return map(inputs, MapOptions.defaults());
  }

  /** As {@link #map(Iterable)}, run as {@code options} say. */
  public Stream<O> map(Iterable<? extends I> inputs, MapOptions options) {
    return mapResults(inputs, options).map(MapResult::get);
  }

  /**
   * As {@link #map(Iterable, MapOptions)}, with each call's failure returned as a value ({@link
   * MapResult.Failed}) instead of thrown: the map runs every input whatever fails.
   */
  public Stream<MapResult<O>> mapResults(Iterable<? extends I> inputs, MapOptions options) {
    SkiffClient c = client.get();
    MapRun run = new MapRun(c, inputs.iterator(), options);
    Thread producer = Thread.ofVirtual().name("skiff-map-" + id).start(run::produce);
    Iterator<MapResult<O>> results = run.consumer();
    int characteristics = Spliterator.NONNULL | (options.ordered() ? Spliterator.ORDERED : 0);
    return StreamSupport.stream(
            Spliterators.spliteratorUnknownSize(results, characteristics), false)
        .onClose(producer::interrupt);
  }

  /**
   * Calls the handler in this process, as a container would (a function on an instance makes its
   * one instance and runs its {@link Enter} methods first): for unit tests. Exceptions come as the
   * handler threw them.
   *
   * @throws UnsupportedOperationException for a function looked up by name
   */
  @SuppressWarnings("unchecked")
  public O local(I input) throws Exception {
    if (definition == null) {
      throw new UnsupportedOperationException(
          id + " was looked up by name: only a function defined here can run here");
    }
    MethodRef ref = definition.ref();
    Method m = ref.method();
    m.setAccessible(true);
    Object target = ref.onInstance() ? instance() : null;
    try {
      return (O) m.invoke(target, input);
    } catch (InvocationTargetException e) {
      if (e.getCause() instanceof Exception ex) {
        throw ex;
      }
      throw (Error) e.getCause();
    }
  }

  private synchronized Object instance() throws Exception {
    if (instance == null) {
      var ctor = definition.ref().owner().getDeclaredConstructor();
      ctor.setAccessible(true);
      Object made = ctor.newInstance();
      JavaRunner.enter(definition.ref().owner(), made); // as a container does
      instance = made;
    }
    return instance;
  }

  @Override
  public String toString() {
    return id;
  }

  /** One map: a producer thread runs it, the stream's reader takes results from a queue. */
  private final class MapRun {
    private static final Object END = new Object();
    private final SkiffClient c;
    private final Iterator<? extends I> inputs;
    private final MapOptions options;
    private final BlockingQueue<Object> ready = new ArrayBlockingQueue<>(1 << 14);
    private final Progress progress;

    MapRun(SkiffClient c, Iterator<? extends I> inputs, MapOptions options) {
      this.c = c;
      this.inputs = inputs;
      this.options = options;
      this.progress = Progress.start(id, options.progress());
    }

    void produce() {
      Iterator<Input> encoded =
          new Iterator<>() {
            @Override
            public boolean hasNext() {
              return inputs.hasNext();
            }

            @Override
            public Input next() {
              progress.sent();
              return Codec.input(inputs.next(), id);
            }
          };
      Object end = END;
      try {
        c.control()
            .map(
                id,
                encoded,
                options.window(),
                (index, r) -> {
                  progress.done();
                  put(new Object[] {index, r});
                });
      } catch (StatusRuntimeException e) {
        end = c.translate(e, "mapping " + id);
      } catch (RuntimeException e) {
        end = e; // the inputs' own exception, or a bad input
      } catch (InterruptedException e) {
        end = new java.util.concurrent.CancellationException("the map over " + id + " was closed");
      } finally {
        progress.stop();
      }
      put(end);
    }

    private void put(Object o) {
      try {
        ready.put(o);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new java.util.concurrent.CancellationException("the map was closed");
      }
    }

    Iterator<MapResult<O>> consumer() {
      return new Iterator<>() {
        private final TreeMap<Long, MapResult<O>> early = new TreeMap<>();
        private long nextIndex;
        private MapResult<O> next;
        private Object end;

        @Override
        public boolean hasNext() {
          while (next == null) {
            if (options.ordered() && early.containsKey(nextIndex)) {
              next = early.remove(nextIndex++);
              break;
            }
            if (end != null) {
              if (end instanceof RuntimeException e) {
                end = END; // thrown once
                throw e;
              }
              return false;
            }
            Object o;
            try {
              o = ready.take();
            } catch (InterruptedException e) {
              Thread.currentThread().interrupt();
              throw new java.util.concurrent.CancellationException("interrupted");
            }
            if (!(o instanceof Object[] pair)) {
              end = o;
              continue;
            }
            MapResult<O> r = result((Long) pair[0], (Result) pair[1]);
            if (!options.ordered()) {
              next = r;
            } else {
              early.put(r.index(), r);
            }
          }
          return true;
        }

        @Override
        public MapResult<O> next() {
          if (!hasNext()) {
            throw new NoSuchElementException();
          }
          MapResult<O> r = next;
          next = null;
          return r;
        }
      };
    }

    private MapResult<O> result(long index, Result r) {
      try {
        return new MapResult.Value<>(index, Codec.<O>outcome(r, type, id));
      } catch (RuntimeException e) {
        return new MapResult.Failed<>(index, e);
      }
    }
  }
}
