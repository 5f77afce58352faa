package dev.conveyor.decode;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import java.io.IOException;
import org.apache.spark.sql.api.java.UDF1;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;

/**
 * The Spark function {@code whole_json(text STRING)}: whether the text holds one JSON value and
 * nothing after it but blanks. Spark's `try_parse_json` stops at the end of the first value, so
 * the reference path asks this too: `{...} trailing` and `{...}{}` are malformed JSON. Parsed as
 * Spark's VARIANT parse reads it (Jackson's defaults, from the decoded text); null for null.
 */
public final class WholeJson implements UDF1<String, Boolean> {
  private static final long serialVersionUID = 1L;
  private static final JsonFactory FACTORY = new JsonFactory();

  @Override
  public Boolean call(String text) {
    if (text == null) {
      return null;
    }
    try (JsonParser parser = FACTORY.createParser(text)) {
      if (parser.nextToken() == null) {
        return false;
      }
      parser.skipChildren();
      return parser.nextToken() == null;
    } catch (IOException | RuntimeException e) {
      return false;
    }
  }

  /** The type this function returns, for registering it. */
  public DataType resultType() {
    return DataTypes.BooleanType;
  }
}
