package dev.conveyor.decode;

import java.util.Locale;

/** The catalog's field types (conveyor.catalog.types), as the certifier handles them. */
public enum FieldType {
  STRING,
  INT,
  LONG,
  FLOAT,
  DOUBLE,
  DECIMAL,
  BOOLEAN,
  DATE,
  TIMESTAMP,
  BYTES;

  /** The type of a canonical catalog name (`decimal(p,s)` is DECIMAL). */
  static FieldType of(String name) {
    String lower = name.toLowerCase(Locale.ROOT);
    if (lower.startsWith("decimal(")) {
      return DECIMAL;
    }
    return FieldType.valueOf(lower.toUpperCase(Locale.ROOT));
  }

  boolean isNumeric() {
    return this == INT || this == LONG || this == FLOAT || this == DOUBLE || this == DECIMAL;
  }
}
