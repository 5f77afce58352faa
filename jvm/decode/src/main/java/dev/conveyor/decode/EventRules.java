package dev.conveyor.decode;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * A stream's event schema as the checks need it: the declared fields in catalog order, which one
 * is the event time, the size limit, what unknown fields mean, and the plausible time window.
 * Built from the JSON that {@code conveyor.ingest.certify.rules_json} writes from the catalog.
 */
public final class EventRules implements Serializable {
  private static final long serialVersionUID = 1L;

  /** What an event's fields outside the catalog mean (the catalog's `unknown_fields`). */
  enum UnknownFields {
    KEEP,
    DROP,
    QUARANTINE
  }

  final List<FieldRule> fields;
  final Map<String, Integer> index;
  final int eventTime;
  final long maxEventBytes;
  final UnknownFields unknownFields;
  final long earliestMicros;
  final long futureSkewMicros;

  private EventRules(
      List<FieldRule> fields,
      int eventTime,
      long maxEventBytes,
      UnknownFields unknownFields,
      long earliestMicros,
      long futureSkewMicros) {
    this.fields = Collections.unmodifiableList(fields);
    Map<String, Integer> byName = new HashMap<>();
    for (int i = 0; i < fields.size(); i++) {
      byName.put(fields.get(i).name, i);
    }
    this.index = Collections.unmodifiableMap(byName);
    this.eventTime = eventTime;
    this.maxEventBytes = maxEventBytes;
    this.unknownFields = unknownFields;
    this.earliestMicros = earliestMicros;
    this.futureSkewMicros = futureSkewMicros;
  }

  /** The rules described by `json`; throws IllegalArgumentException naming what is wrong. */
  public static EventRules fromJson(String json) {
    JsonNode root;
    try {
      root = new ObjectMapper().readTree(json);
    } catch (IOException e) {
      throw new UncheckedIOException("event rules are not JSON", e);
    }
    List<FieldRule> fields = new ArrayList<>();
    int eventTime = -1;
    String eventTimeName = root.path("eventTime").asText();
    for (JsonNode field : root.path("fields")) {
      String name = field.path("name").asText();
      if (name.equals(eventTimeName)) {
        eventTime = fields.size();
      }
      fields.add(fieldRule(name, field));
    }
    if (eventTime < 0) {
      throw new IllegalArgumentException("the event time field '" + eventTimeName + "' is not declared");
    }
    return new EventRules(
        fields,
        eventTime,
        root.path("maxEventBytes").asLong(),
        UnknownFields.valueOf(root.path("unknownFields").asText().toUpperCase(java.util.Locale.ROOT)),
        root.path("earliestMicros").asLong(),
        root.path("futureSkewMicros").asLong());
  }

  private static FieldRule fieldRule(String name, JsonNode field) {
    FieldType type = FieldType.of(field.path("type").asText());
    Set<String> allowed = null;
    if (field.hasNonNull("allowed")) {
      allowed = new HashSet<>();
      for (JsonNode value : field.get("allowed")) {
        allowed.add(value.asText());
      }
    }
    Pattern pattern = field.hasNonNull("pattern") ? Pattern.compile(field.get("pattern").asText()) : null;
    return new FieldRule(
        name,
        type,
        field.path("precision").asInt(0),
        field.path("scale").asInt(0),
        field.path("required").asBoolean(false),
        allowed,
        pattern,
        field.hasNonNull("minimum") ? field.get("minimum").asDouble() : null,
        field.hasNonNull("maximum") ? field.get("maximum").asDouble() : null,
        field.path("iso8601").asBoolean(false),
        field.path("epochMillis").asBoolean(false));
  }
}
