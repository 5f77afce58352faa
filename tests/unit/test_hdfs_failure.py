"""The ingest's one-line answers for HDFS failures inside a streaming query's error text."""

from __future__ import annotations

from conveyor.hdfs_errors import hdfs_failure
from conveyor.settings import Settings

SETTINGS = Settings(hdfs_uri="hdfs://127.0.0.1:40123")

QUOTA = (
    "[STREAM_FAILED] Query [id = 1] terminated with exception: An exception was raised by the "
    "Python Proxy. Return Message: Traceback (most recent call last):\n  File ...\n"
    "py4j.protocol.Py4JJavaError: An error occurred while calling o95.save.\n"
    ": org.apache.hadoop.hdfs.protocol.NSQuotaExceededException: The NameSpace quota "
    "(directories and files) of directory /lake/orders/silver is exceeded: quota=20 file "
    "count=21\n\tat org.apache.hadoop.hdfs.server.namenode.DirectoryWithQuotaFeature.verify"
)
REFUSED = (
    "[STREAM_FAILED] Query [id = 2] terminated with exception: Call From host/127.0.0.1 to "
    "127.0.0.1:40123 failed on connection exception: java.net.ConnectException: Connection "
    "refused; For more details see:  http://wiki.apache.org/hadoop/ConnectionRefused"
)


def test_a_reached_quota_names_the_quota_and_the_folder() -> None:
    reason = hdfs_failure(SETTINGS, QUOTA)
    assert reason is not None
    assert reason.startswith("HDFS refused a write, a quota was reached: The NameSpace quota")
    assert "/lake/orders/silver is exceeded: quota=20 file count=21" in reason
    assert "\n" not in reason and "at org.apache" not in reason


def test_a_reached_space_quota_is_named_too() -> None:
    space = QUOTA.replace("NSQuotaExceededException", "DSQuotaExceededException").replace(
        "The NameSpace quota (directories and files) of directory /lake/orders/silver is "
        "exceeded: quota=20 file count=21",
        "The DiskSpace quota of /lake/orders/silver is exceeded: quota = 1048576 B = 1 MB but "
        "diskspace consumed = 402653184 B = 384 MB",
    )
    reason = hdfs_failure(SETTINGS, space)
    assert reason is not None
    assert "The DiskSpace quota of /lake/orders/silver is exceeded: quota = 1048576 B" in reason


def test_an_unreachable_namenode_is_named() -> None:
    reason = hdfs_failure(SETTINGS, REFUSED)
    assert reason is not None
    assert reason.startswith(
        "HDFS is unreachable: the NameNode at 127.0.0.1:40123 refused or dropped"
    )


def test_the_namenode_is_recognised_by_the_host_name_hadoop_resolved() -> None:
    resolved = REFUSED.replace("to 127.0.0.1:40123", "to localhost:40123")
    reason = hdfs_failure(SETTINGS, resolved)
    assert reason is not None
    assert reason.startswith(
        "HDFS is unreachable: the NameNode at 127.0.0.1:40123 refused or dropped"
    )


def test_a_namenode_that_died_during_a_call_is_named() -> None:
    dropped = (
        "[STREAM_FAILED] Query [id = 3] terminated with exception: End of File Exception between "
        'local host is: "vm/127.0.0.1"; destination host is: "localhost":40123; : '
        "java.io.EOFException; For more details see:  http://wiki.apache.org/hadoop/EOFException"
    )
    reason = hdfs_failure(SETTINGS, dropped)
    assert reason is not None
    assert reason.startswith("HDFS is unreachable: the NameNode at 127.0.0.1:40123")


def test_other_failures_are_not_taken_for_hdfs() -> None:
    assert hdfs_failure(SETTINGS, REFUSED.replace("40123", "9092")) is None
    assert hdfs_failure(SETTINGS, REFUSED.replace("40123", "401234")) is None
    assert hdfs_failure(SETTINGS, "[STREAM_FAILED] something else broke") is None
