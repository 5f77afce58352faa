"""Small, Spark-free looks at the lake's file system through WebHDFS."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from conveyor.errors import ConveyorError
from conveyor.settings import Settings


class LakeUnavailable(ConveyorError):
    """The lake's file system did not answer."""


def webhdfs(settings: Settings, path: str, op: str, method: str = "GET") -> dict[str, Any]:
    """Call one WebHDFS operation on path (absolute, inside the file system)."""
    return webhdfs_at(settings.namenode_http, path, op, method)


def webhdfs_at(
    http: str, path: str, op: str, method: str = "GET", user: str | None = None
) -> dict[str, Any]:
    """`webhdfs` on the NameNode at `http` (for the stack, before settings know it); the user
    is `user`, else HADOOP_USER_NAME, else USER. Raises FileNotFoundError or LakeUnavailable."""
    user = user or os.environ.get("HADOOP_USER_NAME") or os.environ.get("USER", "conveyor")
    query = urllib.parse.urlencode({"op": op, "user.name": user})
    url = f"{http}/webhdfs/v1{urllib.parse.quote(path)}?{query}"
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            payload: dict[str, Any] = json.load(response)
            return payload
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise FileNotFoundError(path) from exc
        raise LakeUnavailable(f"WebHDFS {op} {path} failed: HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise LakeUnavailable(f"WebHDFS at {http} did not answer: {exc}") from exc


def list_dir(settings: Settings, path: str) -> list[str]:
    """Names in a lake directory."""
    statuses = webhdfs(settings, path, "LISTSTATUS")["FileStatuses"]["FileStatus"]
    return sorted(s["pathSuffix"] for s in statuses)
