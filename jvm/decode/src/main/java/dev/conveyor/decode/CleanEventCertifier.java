package dev.conveyor.decode;

import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.api.java.UDF2;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;

/**
 * The Spark function {@code certify(value BINARY, kafka_micros BIGINT)}: one parse of a Kafka
 * value and the catalog's checks. For an event the reference path would land in silver, with
 * exactly these values, it returns the struct {@code (has_unknown, f0, f1, ...)} (one member per
 * declared field in catalog order; dates as days since the epoch, timestamps as microseconds);
 * for anything else null, and the reference path decides the record. Deterministic and pure.
 */
public final class CleanEventCertifier implements UDF2<byte[], Long, Row> {
  private static final long serialVersionUID = 1L;

  private final EventRules rules;
  private final JsonEventDecoder decoder;
  private final EventChecks checks;

  public CleanEventCertifier(String rulesJson) {
    this.rules = EventRules.fromJson(rulesJson);
    this.decoder = new JsonEventDecoder(rules);
    this.checks = new EventChecks(rules);
  }

  @Override
  public Row call(byte[] value, Long kafkaMicros) {
    if (kafkaMicros == null) {
      return null;
    }
    DecodedEvent event = decoder.decode(value);
    if (event == null || !checks.clean(event, kafkaMicros)) {
      return null;
    }
    Object[] out = new Object[rules.fields.size() + 1];
    out[0] = event.hasUnknown;
    System.arraycopy(event.values, 0, out, 1, event.values.length);
    return RowFactory.create(out);
  }

  /** The struct this function returns, for registering it. */
  public DataType resultType() {
    List<StructField> members = new ArrayList<>();
    members.add(DataTypes.createStructField("has_unknown", DataTypes.BooleanType, false));
    for (int i = 0; i < rules.fields.size(); i++) {
      members.add(DataTypes.createStructField("f" + i, sparkType(rules.fields.get(i)), true));
    }
    return DataTypes.createStructType(members);
  }

  private static DataType sparkType(FieldRule rule) {
    switch (rule.type) {
      case STRING:
        return DataTypes.StringType;
      case INT:
      case DATE:
        return DataTypes.IntegerType;
      case LONG:
      case TIMESTAMP:
        return DataTypes.LongType;
      case FLOAT:
        return DataTypes.FloatType;
      case DOUBLE:
        return DataTypes.DoubleType;
      case DECIMAL:
        return DataTypes.createDecimalType(rule.precision, rule.scale);
      case BOOLEAN:
        return DataTypes.BooleanType;
      case BYTES:
        return DataTypes.BinaryType;
      default:
        throw new IllegalStateException("no Spark type for " + rule.type);
    }
  }
}
