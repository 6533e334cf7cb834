package dev.skiff.casfs;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skiff.api.ImageRef;
import dev.skiff.casfs.digest.Digest;
import dev.skiff.casfs.store.S3Location;
import java.io.IOException;
import java.net.URI;
import java.time.Instant;
import java.time.format.DateTimeParseException;

/**
 * What a tag blob ({@code refs/NAME/TAG}) says: the index it names, when and from what it was
 * written, what its import added, and for an image pulled from a bucket where its chunks live. The
 * one shape every writer of tags uses (import, optimize, pull, push); parsed strictly, so that a
 * damaged tag is an error that names it rather than a crash deeper in.
 *
 * @param written when the tag was written (imported, pulled or pushed)
 * @param source what the image was made from, for people ("" when unknown)
 * @param newBytes what producing the image added to the store
 * @param remote where a pulled image's chunks live; null when they are in this store
 */
record TagDocument(
    Digest index,
    Instant written,
    String source,
    long newBytes,
    long newChunks,
    S3Location remote) {
  private static final ObjectMapper JSON = new ObjectMapper();

  TagDocument {
    source = source == null ? "" : source;
  }

  static TagDocument local(Digest index, String source, long newBytes, long newChunks) {
    return new TagDocument(index, Instant.now(), source, newBytes, newChunks, null);
  }

  /** Parses a tag blob's bytes; {@code ref} names it in errors. */
  static TagDocument parse(ImageRef ref, byte[] bytes) throws DamagedTagException {
    JsonNode doc;
    try {
      doc = JSON.readTree(bytes);
    } catch (IOException e) {
      throw new DamagedTagException(
          ref, "not a tag document (" + e.getClass().getSimpleName() + ")");
    }
    if (doc == null || !doc.isObject() || !doc.path("index").isTextual()) {
      throw new DamagedTagException(ref, "not a tag document (it names no index)");
    }
    try {
      Digest index = Digest.parse(doc.path("index").asText());
      String when =
          doc.path("imported").isTextual()
              ? doc.path("imported").asText()
              : doc.path("pushed").asText(null);
      S3Location remote = null;
      if (doc.path("remote").isObject()) {
        JsonNode r = doc.path("remote");
        String endpoint = r.path("endpoint").isTextual() ? r.path("endpoint").asText() : null;
        remote =
            S3Location.parse(
                r.path("url").asText(),
                endpoint == null ? null : URI.create(endpoint),
                r.path("region").isTextual() ? r.path("region").asText() : null,
                r.path("pathStyle").asBoolean());
      }
      return new TagDocument(
          index,
          when == null ? Instant.EPOCH : Instant.parse(when),
          doc.path("source").asText(""),
          doc.path("newBytes").asLong(),
          doc.path("newChunks").asLong(),
          remote);
    } catch (IllegalArgumentException | DateTimeParseException e) {
      throw new DamagedTagException(ref, e.getMessage());
    }
  }

  /** The JSON written to the tag blob. A tag in a bucket (pushed) says when it was pushed. */
  byte[] toJson(boolean pushed) throws IOException {
    ObjectNode doc = JSON.createObjectNode();
    doc.put("index", index.toString());
    doc.put(pushed ? "pushed" : "imported", written.toString());
    if (!pushed) {
      doc.put("source", source);
      doc.put("newBytes", newBytes);
      doc.put("newChunks", newChunks);
    }
    if (remote != null) {
      ObjectNode r = doc.putObject("remote");
      r.put("url", remote.url());
      r.put("endpoint", remote.endpoint() == null ? null : remote.endpoint().toString());
      r.put("region", remote.region());
      r.put("pathStyle", remote.pathStyle());
    }
    return JSON.writeValueAsBytes(doc);
  }
}
