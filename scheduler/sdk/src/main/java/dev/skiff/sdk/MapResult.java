package dev.skiff.sdk;

/**
 * One input's outcome in a map that returns exceptions as values: its value, or the exception the
 * call ended with ({@link RemoteException}, {@link FunctionTimeoutException}, ...).
 *
 * @param <O> the function's result type
 */
public sealed interface MapResult<O> {
  /** The input's position in the map's inputs. */
  long index();

  /** The value, or throws the call's exception. */
  O get();

  /** A call that returned {@code value}. */
  record Value<O>(long index, O value) implements MapResult<O> {
    @Override
    public O get() {
      return value;
    }
  }

  /** A call that ended with {@code exception}. */
  record Failed<O>(long index, RuntimeException exception) implements MapResult<O> {
    @Override
    public O get() {
      throw exception;
    }
  }
}
