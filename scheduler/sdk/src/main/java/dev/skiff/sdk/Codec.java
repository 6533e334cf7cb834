package dev.skiff.sdk;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JavaType;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.google.protobuf.ByteString;
import dev.skiff.scheduler.proto.Input;
import dev.skiff.scheduler.proto.Result;
import java.lang.reflect.Type;
import java.util.concurrent.CancellationException;

/**
 * Inputs and results as they travel: JSON through Jackson (objects, records, collections,
 * primitives), readable by a Python handler or caller as plain JSON; a {@code byte[]} as raw bytes,
 * neither JSON nor base64 (a Python handler gets {@code bytes}). An input is the handler's one
 * positional argument.
 */
final class Codec {
  static final ObjectMapper JSON =
      new ObjectMapper()
          .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false)
          .configure(SerializationFeature.FAIL_ON_EMPTY_BEANS, true)
          .configure(com.fasterxml.jackson.core.JsonGenerator.Feature.AUTO_CLOSE_TARGET, false);

  private Codec() {}

  /** Loads the codec's classes (a fresh JVM's first call would otherwise wait for them). */
  static void warmUp() {
    try {
      JSON.readValue(
          JSON.writeValueAsString(java.util.Map.of("warm", java.util.List.of(1))), Object.class);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  static JavaType type(Type t) {
    return JSON.getTypeFactory().constructType(t);
  }

  /** An input as it is sent to {@code function}; a value Jackson cannot write fails here. */
  static Input input(Object value, String function) {
    if (value instanceof byte[] b) {
      return Input.newBuilder().setRaw(ByteString.copyFrom(b)).build();
    }
    try {
      ByteString.Output out = ByteString.newOutput(64);
      out.write('[');
      JSON.writeValue(out, value);
      out.write(']');
      return Input.newBuilder().setArgsJson(out.toByteString()).build();
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException(
          "cannot send a "
              + (value == null ? "null" : value.getClass().getName())
              + " to "
              + function
              + ": Jackson cannot write it as JSON ("
              + e.getOriginalMessage()
              + "); give it properties (a record, getters) or send a type that has them",
          e);
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e); // a stream in memory: never
    }
  }

  /**
   * The value a finished call returned, or the exception it ended with.
   *
   * @throws IllegalStateException for a call that has not finished
   */
  @SuppressWarnings("unchecked")
  static <O> O outcome(Result r, JavaType type, String function) {
    String call = r.getCallId().isEmpty() ? function : function + " (call " + r.getCallId() + ")";
    var f = r.getFailure();
    return switch (r.getStatus()) {
      case SUCCESS -> {
        if (type.hasRawClass(Void.class) || type.hasRawClass(void.class)) {
          yield null;
        }
        if (r.hasOutputRaw()) {
          if (type.hasRawClass(byte[].class) || type.hasRawClass(Object.class)) {
            yield (O) r.getOutputRaw().toByteArray();
          }
          throw new IllegalStateException(
              call
                  + " returned raw bytes ("
                  + r.getOutputRaw().size()
                  + " of them), not a "
                  + type
                  + ": declare it as returning byte[]");
        }
        try {
          yield (O) JSON.readValue(r.getOutputJson().newInput(), type);
        } catch (JsonProcessingException e) {
          throw new IllegalStateException(
              call + " returned JSON that is not a " + type + ": " + e.getOriginalMessage(), e);
        } catch (java.io.IOException e) {
          throw new java.io.UncheckedIOException(e); // bytes in memory: never
        }
      }
      case HANDLER_ERROR ->
          throw new RemoteException(f.getType(), f.getMessage(), f.getTraceback());
      case TIMEOUT -> throw new FunctionTimeoutException(call + ": " + f.getMessage());
      case OUT_OF_MEMORY -> throw new OutOfMemoryException(call + ": " + f.getMessage());
      case CANCELLED -> throw new CancellationException(call + " was cancelled");
      case INTERNAL ->
          throw new InternalFailureException(call + ": " + f.getType() + ": " + f.getMessage());
      default ->
          throw new IllegalStateException(call + " has not finished (" + r.getStatus() + ")");
    };
  }
}
