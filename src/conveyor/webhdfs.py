"""Small, Spark-free looks at the lake's file system through WebHDFS."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from conveyor.errors import ConveyorError
from conveyor.settings import Settings


class LakeUnavailable(ConveyorError):
    """The lake's file system did not answer."""


def webhdfs(settings: Settings, path: str, op: str, method: str = "GET") -> dict[str, Any]:
    """Call one WebHDFS operation on path (absolute, inside the file system)."""
    return webhdfs_at(settings.namenode_http, path, op, method)


def hdfs_user() -> str:
    """The HDFS user this process acts as (simple authentication): HADOOP_USER_NAME, else the
    operating-system user, as Hadoop's own client decides."""
    import pwd

    return os.environ.get("HADOOP_USER_NAME") or pwd.getpwuid(os.getuid()).pw_name


def webhdfs_at(
    http: str,
    path: str,
    op: str,
    method: str = "GET",
    user: str | None = None,
    params: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """`webhdfs` on the NameNode at `http` (for the stack, before settings know it) as `user`,
    else `hdfs_user()`. Raises FileNotFoundError or LakeUnavailable (403: PermissionError)."""
    query = urllib.parse.urlencode({"op": op, "user.name": user or hdfs_user(), **(params or {})})
    url = f"{http}/webhdfs/v1{urllib.parse.quote(path)}?{query}"
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
            payload: dict[str, Any] = json.loads(body) if body.strip() else {}
            return payload
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise FileNotFoundError(path) from exc
        if exc.code == 403:
            raise PermissionError(f"WebHDFS {op} {path}: permission denied") from exc
        raise LakeUnavailable(f"WebHDFS {op} {path} failed: HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise LakeUnavailable(f"WebHDFS at {http} did not answer: {exc}") from exc


def list_dir(settings: Settings, path: str) -> list[str]:
    """Names in a lake directory."""
    statuses = webhdfs(settings, path, "LISTSTATUS")["FileStatuses"]["FileStatus"]
    return sorted(s["pathSuffix"] for s in statuses)
