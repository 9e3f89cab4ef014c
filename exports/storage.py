"""Where partitions go: a local folder (``file:///abs/folder``) or an S3-compatible bucket
(``s3://bucket/prefix?endpoint=http://host:9000&region=us-east-1``).

Both put an object under its final name only when it is complete: a folder writes a hidden
temporary file beside it and renames it (atomic on one filesystem); S3 makes an object
visible only when its (multipart) upload completes. A reader sees the old file or the new
one, never half of one.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from revops.errors import ApplicationError

S3_QUERY_KEYS = {"endpoint", "region"}


@dataclass(frozen=True)
class Destination:
    kind: str  # file or s3
    root: str  # the folder (file) or the key prefix without slashes at the ends (s3)
    bucket: str = ""
    endpoint: str = ""
    region: str = ""

    def describe(self) -> str:
        if self.kind == "file":
            return f"folder {self.root}"
        where = f" at {self.endpoint}" if self.endpoint else ""
        return f"bucket {self.bucket}{where}, prefix {self.root or '(none)'}"


def _bad(message: str) -> ApplicationError:
    return ApplicationError(message, details={"field": "url"})


# botocore's own check of a region name (an invalid one is refused when the client is made).
REGION = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9\-]{0,61}[a-zA-Z0-9])?$")


def destination_parse(url: str) -> Destination:
    """The destination a target URL names, or an ApplicationError saying what is wrong."""
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # an unclosed [ of an IPv6 address, a bad port
        raise _bad(f"The URL cannot be read: {exc}.") from None
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise _bad("A folder URL is file:///absolute/path (three slashes, no host).")
        path = parts.path
        if not path.startswith("/") or path == "/":
            raise _bad("A folder URL needs an absolute folder path other than /, e.g. file:///srv/exports.")
        if parts.query:
            raise _bad("A folder URL takes no query (?…).")
        return Destination(kind="file", root=os.path.normpath(path))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise _bad("An S3 URL names its bucket: s3://bucket/prefix.")
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(query) - S3_QUERY_KEYS)
        if unknown:
            raise _bad(f"Unknown S3 URL option {', '.join(unknown)}; the options are endpoint and region.")
        endpoint = query.get("endpoint", [""])[-1]
        if endpoint and not _is_http_url(endpoint):
            raise _bad("endpoint must be an http:// or https:// URL, e.g. endpoint=http://127.0.0.1:9000.")
        region = query.get("region", [""])[-1]
        if region and not REGION.match(region):
            raise _bad(f"“{region[:40]}” is not a region name (letters, digits and -, e.g. us-east-1).")
        return Destination(kind="s3", root=parts.path.strip("/"), bucket=parts.netloc, endpoint=endpoint, region=region)
    raise _bad("The URL must start with file:/// (a folder) or s3:// (an S3-compatible bucket).")


def _is_http_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - reading it checks it
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not any(c.isspace() for c in text)


class FolderStore:
    def __init__(self, destination: Destination) -> None:
        self.root = Path(destination.root)

    def _path(self, key: str) -> Path:
        return self.root / key

    def put_file(self, key: str, local: Path) -> None:
        final = self._path(key)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            temp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
            shutil.copyfile(local, temp)
            os.replace(temp, final)
        except OSError as exc:
            raise ApplicationError(f"Cannot write {final}: {exc.strerror or exc}.") from None

    def put_bytes(self, key: str, data: bytes) -> None:
        final = self._path(key)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            temp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
            temp.write_bytes(data)
            os.replace(temp, final)
        except OSError as exc:
            raise ApplicationError(f"Cannot write {final}: {exc.strerror or exc}.") from None

    def read(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise ApplicationError(f"Cannot delete {self._path(key)}: {exc.strerror or exc}.") from None


class S3Store:
    def __init__(self, destination: Destination, credentials: dict) -> None:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError

        self.bucket = destination.bucket
        self.prefix = destination.root
        try:
            self.client = boto3.client(
                "s3",
                endpoint_url=destination.endpoint or None,
                region_name=destination.region or None,
                aws_access_key_id=credentials.get("access_key_id") or None,
                aws_secret_access_key=credentials.get("secret_access_key") or None,
                config=Config(
                    connect_timeout=10,
                    read_timeout=60,
                    retries={"max_attempts": 4, "mode": "standard"},
                    # Most S3-compatible servers (MinIO, Ceph, moto) want path-style addressing.
                    s3={"addressing_style": "path" if destination.endpoint else "auto"},
                ),
            )
        except (BotoCoreError, ValueError) as exc:  # a region or endpoint botocore refuses
            raise ApplicationError(f"Cannot use this S3 destination: {exc}.") from None

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, what: str, fn, *args, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(*args, **kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise ApplicationError(
                f"S3 refused to {what}: {error.get('Code', '?')} {error.get('Message', '')}".strip() + "."
            ) from None
        except BotoCoreError as exc:
            raise ApplicationError(f"Cannot reach S3 to {what}: {exc}.") from None

    def put_file(self, key: str, local: Path) -> None:
        self._call(f"write {self._key(key)}", self.client.upload_file, str(local), self.bucket, self._key(key))

    def put_bytes(self, key: str, data: bytes) -> None:
        self._call(f"write {self._key(key)}", self.client.put_object, Bucket=self.bucket, Key=self._key(key), Body=data)

    def read(self, key: str) -> bytes:
        response = self._call(f"read {self._key(key)}", self.client.get_object, Bucket=self.bucket, Key=self._key(key))
        return response["Body"].read()

    def delete(self, key: str) -> None:
        self._call(f"delete {self._key(key)}", self.client.delete_object, Bucket=self.bucket, Key=self._key(key))


def store_for(destination: Destination, credentials: dict) -> FolderStore | S3Store:
    if destination.kind == "file":
        return FolderStore(destination)
    return S3Store(destination, credentials)
