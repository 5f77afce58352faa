package dev.conveyor.decode;

import java.time.DateTimeException;
import java.time.LocalDateTime;
import java.time.ZoneOffset;

/**
 * The strict ISO-8601 shape the certifier reads: {@code yyyy-mm-dd(T| )hh:mm:ss[.f{1,9}]} then
 * {@code Z}, {@code ±hh:mm} or {@code ±hhmm} (at most 14 hours). Every text of this shape matches
 * the reference's pattern, and Spark's cast reads it as java.time does here, truncating the
 * fraction to microseconds. Other spellings (no seconds, lower-case z, a trailing blank) go to
 * the reference.
 */
final class IsoTimestamps {
  private static final int MAX_OFFSET_HOURS = 14;

  private IsoTimestamps() {}

  /** Microseconds since the epoch, or null when the text is not of the strict shape. */
  static Long micros(String text) {
    int n = text.length();
    if (n < 20 || text.charAt(4) != '-' || text.charAt(7) != '-' || text.charAt(13) != ':'
        || text.charAt(16) != ':') {
      return null;
    }
    char separator = text.charAt(10);
    if (separator != 'T' && separator != ' ') {
      return null;
    }
    int year = digits(text, 0, 4);
    int month = digits(text, 5, 2);
    int day = digits(text, 8, 2);
    int hour = digits(text, 11, 2);
    int minute = digits(text, 14, 2);
    int second = digits(text, 17, 2);
    if (year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) {
      return null;
    }
    int at = 19;
    int fraction = 0;
    if (text.charAt(at) == '.') {
      int start = ++at;
      while (at < n && JsonScalars.isDigit(text.charAt(at))) {
        if (at - start < 6) {
          fraction = fraction * 10 + (text.charAt(at) - '0');
        }
        at++;
      }
      int count = at - start;
      if (count == 0 || count > 9) {
        return null;
      }
      for (int i = Math.min(count, 6); i < 6; i++) {
        fraction *= 10;
      }
    }
    ZoneOffset offset = offset(text, at);
    if (offset == null) {
      return null;
    }
    try {
      LocalDateTime local = LocalDateTime.of(year, month, day, hour, minute, second);
      return JsonScalars.micros(local, offset, fraction);
    } catch (DateTimeException | ArithmeticException e) {
      return null;
    }
  }

  private static ZoneOffset offset(String text, int at) {
    int rest = text.length() - at;
    if (rest == 1 && text.charAt(at) == 'Z') {
      return ZoneOffset.UTC;
    }
    if (rest != 5 && rest != 6) {
      return null;
    }
    char sign = text.charAt(at);
    if (sign != '+' && sign != '-') {
      return null;
    }
    int hours = digits(text, at + 1, 2);
    int minutesAt = rest == 6 ? at + 4 : at + 3;
    if (rest == 6 && text.charAt(at + 3) != ':') {
      return null;
    }
    int minutes = digits(text, minutesAt, 2);
    if (hours < 0 || minutes < 0 || hours > MAX_OFFSET_HOURS || minutes > 59) {
      return null;
    }
    return JsonScalars.offset(sign == '-' ? -1 : 1, hours, minutes);
  }

  /** The `count` ASCII digits at `from` as a number, or -1. */
  static int digits(String text, int from, int count) {
    int value = 0;
    for (int i = from; i < from + count; i++) {
      char c = text.charAt(i);
      if (!JsonScalars.isDigit(c)) {
        return -1;
      }
      value = value * 10 + (c - '0');
    }
    return value;
  }
}
