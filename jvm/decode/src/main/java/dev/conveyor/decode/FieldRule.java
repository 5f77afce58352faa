package dev.conveyor.decode;

import java.io.Serializable;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * One catalog field and its checks. Value checks (allowed, pattern, minimum, maximum) follow
 * Spark's semantics exactly: `isin` is string equality, `rlike` is {@link java.util.regex.Matcher#find()},
 * and a bound compares the value widened to a double.
 */
final class FieldRule implements Serializable {
  private static final long serialVersionUID = 1L;

  final String name;
  final FieldType type;
  final int precision;
  final int scale;
  final boolean required;
  final Set<String> allowed;
  final Pattern pattern;
  final Double minimum;
  final Double maximum;
  final boolean iso8601;
  final boolean epochMillis;

  FieldRule(
      String name,
      FieldType type,
      int precision,
      int scale,
      boolean required,
      Set<String> allowed,
      Pattern pattern,
      Double minimum,
      Double maximum,
      boolean iso8601,
      boolean epochMillis) {
    this.name = name;
    this.type = type;
    this.precision = precision;
    this.scale = scale;
    this.required = required;
    this.allowed = allowed;
    this.pattern = pattern;
    this.minimum = minimum;
    this.maximum = maximum;
    this.iso8601 = iso8601;
    this.epochMillis = epochMillis;
  }

  /** Whether a present value passes the field's value checks (types were checked by the decoder). */
  boolean accepts(Object value) {
    if (allowed != null && !allowed.contains((String) value)) {
      return false;
    }
    if (pattern != null && !pattern.matcher((String) value).find()) {
      return false;
    }
    if (minimum == null && maximum == null) {
      return true;
    }
    double widened = asDouble(value);
    if (minimum != null && widened < minimum) {
      return false;
    }
    return maximum == null || !(widened > maximum);
  }

  private static double asDouble(Object value) {
    if (value instanceof java.math.BigDecimal exact) {
      return exact.doubleValue(); // Spark's Decimal.toDouble
    }
    return ((Number) value).doubleValue();
  }
}
