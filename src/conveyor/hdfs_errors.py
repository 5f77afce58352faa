"""What an HDFS failure inside an error's text means for the user: a quota reached, or the
NameNode unreachable, each in one line saying what to do; anything else is not HDFS's."""

from __future__ import annotations

import re

from conveyor.settings import Settings

_CONNECTION_LOST = (
    "java.net.ConnectException",
    "java.io.EOFException",
    "Connection reset",
    "java.net.SocketTimeoutException",
)
_QUOTA = re.compile(r"The (?:NameSpace|DiskSpace) quota .*? is exceeded: [^\n]*")


def hdfs_failure(settings: Settings, error: str) -> str | None:
    """What an HDFS failure inside a query's error text means for the user, or None when the
    error is not one of HDFS's: a quota reached, or the NameNode unreachable. Either way the
    batch did not commit, and a restart lands it again from the checkpoint."""
    quota = _QUOTA.search(error)
    if quota:
        return (
            f"HDFS refused a write, a quota was reached: {quota.group(0).strip()}. Raise the "
            "quota (hdfs dfsadmin -setQuota / -setSpaceQuota) and start the stream again; the "
            "batch that failed lands then, nothing is lost."
        )
    namenode = settings.fs_uri.removeprefix("hdfs://").split("/", 1)[0]
    port = namenode.rpartition(":")[2]
    # Hadoop names the NameNode by the host name it resolved (localhost for 127.0.0.1): a
    # refused connection, or one dropped mid-call (EOF, reset) when the NameNode died under it
    if (
        port
        and any(sign in error for sign in _CONNECTION_LOST)
        and re.search(rf"[\w.\-]+\"?:{port}\b", error)
    ):
        return (
            f"HDFS is unreachable: the NameNode at {namenode} refused or dropped the "
            "connection. Start it and the stream again; the stream resumes from its "
            "checkpoint, nothing is lost."
        )
    return None
