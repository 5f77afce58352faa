package dev.conveyor.decode;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.io.IOException;
import java.io.Serializable;
import java.util.HashSet;
import java.util.Set;
import org.apache.spark.unsafe.types.UTF8String;

/**
 * Decodes a Kafka value holding one JSON object with one streaming parse (Jackson, Spark's own
 * version and default settings, as Spark's JSON functions use them).
 *
 * <p>It returns a {@link DecodedEvent} only for a value that the reference path
 * (conveyor.ingest.quality.assess) reads as a well-formed object with exactly these values, and
 * null for anything it does not settle itself: not valid UTF-8, oversized, a leading byte-order
 * mark or other text before the object, content after it, duplicate keys at any depth, a declared
 * field of another JSON type, a lone surrogate in any string, numbers in exponent form or with more digits than a double holds
 * exactly, timestamps in any but the strict ISO-8601 or epoch-millisecond shapes, and deep
 * nesting. Such values, rare in practice, take the reference path, which decides them.
 */
final class JsonEventDecoder implements Serializable {
  private static final long serialVersionUID = 1L;
  private static final int MAX_DEPTH = 64;
  private static final JsonFactory FACTORY = new JsonFactory();

  private final EventRules rules;

  JsonEventDecoder(EventRules rules) {
    this.rules = rules;
  }

  /** The event in `value`, or null when the reference path must decide it. */
  DecodedEvent decode(byte[] value) {
    if (value == null || value.length == 0 || value.length > rules.maxEventBytes) {
      return null;
    }
    if (!startsWithObject(value) || !UTF8String.fromBytes(value).isValid()) {
      return null;
    }
    try (JsonParser parser = FACTORY.createParser(value)) {
      if (parser.nextToken() != JsonToken.START_OBJECT) {
        return null;
      }
      DecodedEvent event = readObject(parser);
      // exactly one JSON value: nothing but blanks may follow it
      return event != null && parser.nextToken() == null ? event : null;
    } catch (IOException | RuntimeException e) {
      return null;
    }
  }

  /**
   * The first byte that is not a JSON blank opens an object, and no NUL byte is among the first
   * four (Jackson would take such input for UTF-16 or UTF-32; a BOM is not a blank).
   */
  private static boolean startsWithObject(byte[] value) {
    for (int i = 0; i < Math.min(4, value.length); i++) {
      if (value[i] == 0) {
        return false;
      }
    }
    for (byte b : value) {
      if (b != ' ' && b != '\t' && b != '\n' && b != '\r') {
        return b == '{';
      }
    }
    return false;
  }

  private DecodedEvent readObject(JsonParser parser) throws IOException {
    DecodedEvent event = new DecodedEvent(rules.fields.size());
    boolean[] seen = new boolean[rules.fields.size()];
    Set<String> unknown = null;
    String key;
    while ((key = parser.nextFieldName()) != null) {
      JsonToken token = parser.nextToken();
      Integer at = rules.index.get(key);
      if (at == null) {
        if (rules.unknownFields == EventRules.UnknownFields.QUARANTINE) {
          return null;
        }
        if (unknown == null) {
          unknown = new HashSet<>();
        }
        if (!unknown.add(key) || !wellFormedKey(key) || !wellFormed(parser, token, 1)) {
          return null;
        }
        event.hasUnknown = true;
        continue;
      }
      if (seen[at]) {
        return null; // a duplicate key: the reference's parse refuses the record
      }
      seen[at] = true;
      if (token == JsonToken.VALUE_NULL) {
        continue;
      }
      Object read = JsonScalars.read(rules.fields.get(at), parser, token);
      if (read == null) {
        return null;
      }
      event.values[at] = read;
    }
    return parser.currentToken() == JsonToken.END_OBJECT ? event : null;
  }

  /** Walks a value of an undeclared field: no duplicate keys at any depth, not too deep. */
  private static boolean wellFormed(JsonParser parser, JsonToken token, int depth)
      throws IOException {
    if (depth > MAX_DEPTH) {
      return false;
    }
    if (token == JsonToken.START_OBJECT) {
      Set<String> keys = new HashSet<>();
      String key;
      while ((key = parser.nextFieldName()) != null) {
        if (!keys.add(key) || !wellFormedKey(key) || !wellFormed(parser, parser.nextToken(), depth + 1)) {
          return false;
        }
      }
      return parser.currentToken() == JsonToken.END_OBJECT;
    }
    if (token == JsonToken.START_ARRAY) {
      JsonToken next;
      while ((next = parser.nextToken()) != JsonToken.END_ARRAY) {
        if (next == null || !wellFormed(parser, next, depth + 1)) {
          return false;
        }
      }
      return true;
    }
    if (token == JsonToken.VALUE_STRING) {
      // decoded: a bad escape fails here, as in the reference's parse; a lone surrogate
      // the reference refuses
      return JsonScalars.wellFormedText(parser.getText()) != null;
    }
    return token != null && token.isScalarValue();
  }

  private static boolean wellFormedKey(String key) {
    return JsonScalars.wellFormedText(key) != null;
  }
}
