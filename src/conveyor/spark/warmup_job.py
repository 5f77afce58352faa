"""The warm-up job behind the Spark class archive (`class_archive.build` runs it under
spark-submit): on local files, the kinds of work a Conveyor driver does, so the classes they load
are the ones archived. Usage: warmup_job.py WORK_DIR"""

from __future__ import annotations

import sys


def main(work: str) -> None:
    from delta.tables import DeltaTable
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    spark = SparkSession.builder.getOrCreate()
    table, source = f"file://{work}/table", f"file://{work}/source"
    events = spark.range(200).select(
        F.to_json(
            F.struct(
                F.col("id").alias("n"),
                F.concat(F.lit("u"), (F.col("id") % 7).cast("string")).alias("user"),
                F.current_timestamp().alias("at"),
            )
        ).alias("value")
    )
    parsed = events.select(
        F.from_json("value", "n long, user string, at timestamp").alias("e")
    ).select("e.*", F.to_date("e.at").alias("day"))
    parsed.write.format("delta").partitionBy("day").save(source)
    parsed.limit(0).write.format("delta").partitionBy("day").save(table)

    def land(batch, batch_id: int) -> None:  # type: ignore[no-untyped-def]
        fresh = batch.dropDuplicates(["n"]).where(F.col("user").isNotNull())
        fresh.write.format("delta").mode("append").option("txnAppId", "warmup").option(
            "txnVersion", batch_id
        ).save(table)

    query = (
        spark.readStream.format("delta")
        .load(source)
        .writeStream.foreachBatch(land)
        .option("checkpointLocation", f"file://{work}/checkpoint")
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    DeltaTable.forPath(spark, table).alias("t").merge(
        parsed.alias("s"), "t.n = s.n"
    ).whenNotMatchedInsertAll().execute()
    DeltaTable.forPath(spark, table).optimize().executeCompaction()
    spark.read.format("delta").load(table).groupBy("user").count().collect()
    # the Kafka source's classes, without a broker: the plan is built, never run
    kafka = spark.readStream.format("kafka").option("kafka.bootstrap.servers", "127.0.0.1:9")
    kafka.option("subscribe", "warmup").load().selectExpr("CAST(value AS STRING)").printSchema()
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1])
