package dev.conveyor.decode;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.io.IOException;
import java.math.BigDecimal;
import java.time.DateTimeException;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.Base64;

/**
 * A declared field's JSON value as the Spark value the reference path reads from it, or null
 * when this value is not one the certifier settles (the reference then decides the record).
 *
 * <p>Why each accepted shape reads the same as the reference (a VARIANT parse, then a cast):
 * a JSON string is Jackson's decoding in both; a plain JSON number is held exactly (a long, or a
 * decimal of up to 38 digits) and cast to a double or float with one correct rounding, which is
 * what parsing its text gives, and a zero is positive; an ISO-8601 text is read field by field
 * with java.time, as Spark's string-to-timestamp cast does, fractions past microseconds
 * truncated.
 */
final class JsonScalars {
  private static final int DOUBLE_DIGITS = 15;
  private static final int FLOAT_DIGITS = 6;
  private static final int DECIMAL_DIGITS = 38;
  private static final int MILLIS_DIGITS = 15;

  private JsonScalars() {}

  static Object read(FieldRule rule, JsonParser parser, JsonToken token) throws IOException {
    switch (rule.type) {
      case STRING:
        return token == JsonToken.VALUE_STRING ? wellFormedText(parser.getText()) : null;
      case BOOLEAN:
        return token.isBoolean() ? token == JsonToken.VALUE_TRUE : null;
      case INT:
      case LONG:
        return token == JsonToken.VALUE_NUMBER_INT ? integer(parser.getText(), rule.type) : null;
      case FLOAT:
      case DOUBLE:
        return token.isNumeric() ? floating(parser.getText(), rule.type) : null;
      case DECIMAL:
        if (token.isNumeric() || token == JsonToken.VALUE_STRING) {
          return decimal(parser.getText(), rule.precision, rule.scale);
        }
        return null;
      case DATE:
        return token == JsonToken.VALUE_STRING ? date(parser.getText()) : null;
      case BYTES:
        return token == JsonToken.VALUE_STRING ? base64(parser.getText()) : null;
      case TIMESTAMP:
        if (token == JsonToken.VALUE_STRING && rule.iso8601) {
          return IsoTimestamps.micros(parser.getText());
        }
        if (token == JsonToken.VALUE_NUMBER_INT && rule.epochMillis) {
          return epochMillis(parser.getText());
        }
        return null;
      default:
        return null;
    }
  }

  /** The text, unless it holds a lone surrogate (Spark would store it as '?' and check that). */
  static String wellFormedText(String text) {
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (Character.isHighSurrogate(c)) {
        if (i + 1 == text.length() || !Character.isLowSurrogate(text.charAt(i + 1))) {
          return null;
        }
        i++;
      } else if (Character.isLowSurrogate(c)) {
        return null;
      }
    }
    return text;
  }

  private static Object integer(String text, FieldType type) {
    int digits = text.length() - (text.charAt(0) == '-' ? 1 : 0);
    if (digits > 18) {
      return null;
    }
    long value = Long.parseLong(text);
    if (type == FieldType.LONG) {
      return value;
    }
    return value == (int) value ? Integer.valueOf((int) value) : null;
  }

  /**
   * A plain number (no exponent) of few enough significant digits that one correct rounding
   * reads it: {@code Double.parseDouble} of the text equals the reference's cast of the exact
   * value. A zero is +0.0, as the exact value has no sign.
   */
  private static Object floating(String text, FieldType type) {
    int significant = significantDigits(text);
    int limit = type == FieldType.DOUBLE ? DOUBLE_DIGITS : FLOAT_DIGITS;
    if (significant < 0 || significant > limit || fractionDigits(text) > DOUBLE_DIGITS) {
      return null;
    }
    if (type == FieldType.DOUBLE) {
      double value = Double.parseDouble(text);
      return value == 0.0 ? 0.0 : value;
    }
    float value = Float.parseFloat(text);
    return value == 0.0f ? 0.0f : value;
  }

  /** Digits from the first non-zero one, or -1 when the text is not a plain JSON number. */
  private static int significantDigits(String text) {
    int count = 0;
    boolean leading = true;
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (c >= '0' && c <= '9') {
        if (c != '0') {
          leading = false;
        }
        if (!leading) {
          count++;
        }
      } else if (c != '-' && c != '.') {
        return -1; // an exponent
      }
    }
    return count;
  }

  private static int fractionDigits(String text) {
    int dot = text.indexOf('.');
    return dot < 0 ? 0 : text.length() - dot - 1;
  }

  /**
   * A JSON number or a string holding a plain decimal, at the field's scale when no non-zero
   * digit lies beyond it and within its precision; else null (the reference reports it).
   */
  private static Object decimal(String text, int precision, int scale) {
    if (!plainDecimal(text) || text.length() > DECIMAL_DIGITS + 2) {
      return null;
    }
    BigDecimal exact = new BigDecimal(text);
    if (exact.precision() > DECIMAL_DIGITS || exact.scale() > DECIMAL_DIGITS) {
      return null;
    }
    BigDecimal scaled;
    try {
      scaled = exact.setScale(scale, java.math.RoundingMode.UNNECESSARY);
    } catch (ArithmeticException e) {
      return null;
    }
    return scaled.precision() - scaled.scale() > precision - scale ? null : scaled;
  }

  /** `-?digits(.digits)?` in ASCII digits. */
  private static boolean plainDecimal(String text) {
    int i = text.startsWith("-") ? 1 : 0;
    int digits = 0;
    while (i < text.length() && isDigit(text.charAt(i))) {
      i++;
      digits++;
    }
    if (digits == 0) {
      return false;
    }
    if (i == text.length()) {
      return true;
    }
    if (text.charAt(i++) != '.') {
      return false;
    }
    int fraction = 0;
    while (i < text.length() && isDigit(text.charAt(i))) {
      i++;
      fraction++;
    }
    return fraction > 0 && i == text.length();
  }

  static boolean isDigit(char c) {
    return c >= '0' && c <= '9';
  }

  /** `yyyy-mm-dd` exactly, a real calendar day: days since 1970-01-01. */
  private static Object date(String text) {
    if (text.length() != 10 || text.charAt(4) != '-' || text.charAt(7) != '-') {
      return null;
    }
    try {
      int year = IsoTimestamps.digits(text, 0, 4);
      int month = IsoTimestamps.digits(text, 5, 2);
      int day = IsoTimestamps.digits(text, 8, 2);
      if (year < 0 || month < 0 || day < 0) {
        return null;
      }
      return Math.toIntExact(LocalDate.of(year, month, day).toEpochDay());
    } catch (DateTimeException | ArithmeticException e) {
      return null;
    }
  }

  /**
   * Canonical base64 only (the standard alphabet, padded, no line breaks, zero pad bits): every
   * decoder, Spark's included, reads it alike.
   */
  private static Object base64(String text) {
    if (text.length() % 4 != 0) {
      return null;
    }
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      boolean alphabet =
          (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || isDigit(c) || c == '+' || c == '/';
      boolean padding = c == '=' && i >= text.length() - 2 && (i == text.length() - 1 || text.charAt(i + 1) == '=');
      if (!alphabet && !padding) {
        return null;
      }
    }
    byte[] decoded;
    try {
      decoded = Base64.getDecoder().decode(text);
    } catch (IllegalArgumentException e) {
      return null;
    }
    return Base64.getEncoder().encodeToString(decoded).equals(text) ? decoded : null;
  }

  /** An integer of at most 15 digits as epoch milliseconds: microseconds. */
  private static Object epochMillis(String text) {
    int digits = text.length() - (text.charAt(0) == '-' ? 1 : 0);
    return digits > MILLIS_DIGITS ? null : Long.parseLong(text) * 1000L;
  }

  /** Used by IsoTimestamps: an offset as java.time has it, or null. */
  static ZoneOffset offset(int sign, int hours, int minutes) {
    try {
      return ZoneOffset.ofHoursMinutes(sign * hours, sign * minutes);
    } catch (DateTimeException e) {
      return null;
    }
  }

  static Long micros(LocalDateTime local, ZoneOffset offset, int fractionMicros) {
    long seconds = local.toEpochSecond(offset);
    return Math.addExact(Math.multiplyExact(seconds, 1_000_000L), fractionMicros);
  }
}
