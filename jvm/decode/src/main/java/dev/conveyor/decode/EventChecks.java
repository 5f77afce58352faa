package dev.conveyor.decode;

import java.io.Serializable;

/**
 * The catalog's checks over a decoded event, whatever format it came in: required fields are
 * present, values pass their field's checks, and the event time lies in the plausible window
 * (from 2000-01-01 up to 24 hours after the record reached Kafka). Type checks belong to the
 * decoder, which only hands over values of the catalog's types.
 */
final class EventChecks implements Serializable {
  private static final long serialVersionUID = 1L;

  private final EventRules rules;

  EventChecks(EventRules rules) {
    this.rules = rules;
  }

  /** Whether the event has no problem the reference would report (lateness is judged later). */
  boolean clean(DecodedEvent event, long kafkaMicros) {
    for (int i = 0; i < rules.fields.size(); i++) {
      FieldRule rule = rules.fields.get(i);
      Object value = event.values[i];
      if (value == null) {
        if (rule.required || i == rules.eventTime) {
          return false;
        }
        continue;
      }
      if (rule.type == FieldType.TIMESTAMP && !plausible((Long) value, kafkaMicros)) {
        return false;
      }
      if (!rule.accepts(value)) {
        return false;
      }
    }
    return true;
  }

  private boolean plausible(long micros, long kafkaMicros) {
    return micros >= rules.earliestMicros && micros <= kafkaMicros + rules.futureSkewMicros;
  }
}
