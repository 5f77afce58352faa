package dev.conveyor.decode;

/**
 * What a decoder read from one record, in the form the checks and Spark take: one value per
 * declared field in catalog order (null when absent or JSON null), typed as Spark holds it
 * (String, Integer, Long, Float, Double, BigDecimal, Boolean, Integer days for a date, Long
 * microseconds for a timestamp, byte[]), and whether the record has fields the catalog does not
 * declare. A decoder only returns one when every value is exactly what the reference path would
 * read; anything else it leaves to the reference.
 */
final class DecodedEvent {
  final Object[] values;
  boolean hasUnknown;

  DecodedEvent(int fields) {
    this.values = new Object[fields];
  }
}
