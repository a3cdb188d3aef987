"""The S3 adapter of the :class:`~livecall_ari.objects.store.Store` seam (boto3), for AWS S3 and
S3-compatible servers (SeaweedFS, MinIO, Ceph RGW...).

Path-style addressing (``endpoint/bucket/key``), which every S3-compatible server accepts.
botocore's newer default of adding CRC checksums to every request is limited to operations that
require one: several S3-compatible servers refuse or mangle the extra trailers, and LiveCall
checks what was stored itself (the ETag the server computed, and the SHA-256 kept as the
object's metadata). The secret key is handed to boto3 and nowhere else: ``name`` and every
message say the endpoint and bucket only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from livecall_ari.objects.core import Fingerprint
from livecall_ari.objects.store import StoredObject, StoreError, StoreUnavailable, file_blocks

SHA256_META = "sha256"
READ_BLOCK = 256 * 1024


class S3Store:
    """One bucket on one S3 endpoint."""

    def __init__(self, endpoint: str, bucket: str, region: str, access_key: str, secret_key: str,
                 *, connect_timeout: float = 5.0, read_timeout: float = 60.0) -> None:
        import boto3
        from botocore.config import Config

        self.endpoint, self.bucket, self.region = endpoint, bucket, region or "us-east-1"
        self._client: Any = boto3.session.Session().client(
            "s3", endpoint_url=endpoint or None, region_name=self.region,
            aws_access_key_id=access_key or None, aws_secret_access_key=secret_key or None,
            config=Config(
                s3={"addressing_style": "path"}, signature_version="s3v4",
                request_checksum_calculation="when_required", response_checksum_validation="when_required",
                connect_timeout=connect_timeout, read_timeout=read_timeout,
                # The uploader retries with its own backoff; boto3's own retries would only hide a
                # store that is down for longer than a call's worth of seconds.
                retries={"max_attempts": 2, "mode": "standard"},
            ),
        )

    def __repr__(self) -> str:
        return f"S3Store({self.name})"

    @property
    def name(self) -> str:
        return f"S3 bucket {self.bucket!r} at {self.endpoint or 'AWS'}"

    def _call(self, what: str, operation: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

        try:
            return getattr(self._client, operation)(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            message = f"{self.name}: {what}: {error.get('Code', status)} {error.get('Message', '')}".rstrip()
            raise (StoreUnavailable if status >= 500 or status == 0 else StoreError)(message) from None
        except (ConnectionError, HTTPClientError) as exc:
            raise StoreUnavailable(f"{self.name}: {what}: cannot reach the store ({type(exc).__name__})") from None
        except BotoCoreError as exc:
            raise StoreError(f"{self.name}: {what}: {exc}") from None

    def ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self._client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if status != 404:
                self._call("check the bucket", "head_bucket", Bucket=self.bucket)  # raises, with the reason
        except Exception:
            self._call("check the bucket", "head_bucket", Bucket=self.bucket)
        args: dict[str, Any] = {"Bucket": self.bucket}
        if self.region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        self._call("create the bucket", "create_bucket", **args)

    def put(self, key: str, path: Path, sent: Fingerprint) -> StoredObject:
        meta = {SHA256_META: sent.sha256}
        if not sent.part_bytes:
            with open(path, "rb") as body:
                self._call(f"upload {key}", "put_object", Bucket=self.bucket, Key=key, Body=body, Metadata=meta,
                           ContentLength=sent.size)
        else:
            self._multipart(key, path, sent, meta)
        stored = self.head(key)
        if stored is None:
            raise StoreError(f"{self.name}: {key} is missing right after its upload")
        return stored

    def _multipart(self, key: str, path: Path, sent: Fingerprint, meta: dict[str, str]) -> None:
        upload = self._call(f"start the upload of {key}", "create_multipart_upload", Bucket=self.bucket, Key=key,
                            Metadata=meta)["UploadId"]
        parts: list[dict[str, Any]] = []
        try:
            for number, block in enumerate(file_blocks(path, 0, None, block=sent.part_bytes), start=1):
                answer = self._call(f"upload part {number} of {key}", "upload_part", Bucket=self.bucket, Key=key,
                                    UploadId=upload, PartNumber=number, Body=block)
                parts.append({"ETag": answer["ETag"], "PartNumber": number})
            self._call(f"finish the upload of {key}", "complete_multipart_upload", Bucket=self.bucket, Key=key,
                       UploadId=upload, MultipartUpload={"Parts": parts})
        except BaseException:
            try:  # leave no half upload behind to be billed for; when the store is down, its own expiry will
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload)
            except Exception:
                pass
            raise

    def head(self, key: str) -> StoredObject | None:
        from botocore.exceptions import ClientError

        try:
            answer = self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0) == 404:
                return None
            answer = self._call(f"look up {key}", "head_object", Bucket=self.bucket, Key=key)
        except Exception:
            answer = self._call(f"look up {key}", "head_object", Bucket=self.bucket, Key=key)
        return StoredObject(key, int(answer["ContentLength"]), str(answer.get("ETag", "")).strip('"'),
                            str(answer.get("Metadata", {}).get(SHA256_META, "")), str(answer.get("VersionId") or ""))

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if start or end is not None:
            args["Range"] = f"bytes={start}-{'' if end is None else end}"
        body = self._call(f"read {key}", "get_object", **args)["Body"]
        return _chunks(body)

    def delete(self, key: str) -> int:
        """Every version and delete marker of the key (a versioned bucket keeps the bytes of a
        plainly deleted object as an older version), then the key itself."""
        deleted = 0
        marker: dict[str, str] = {}
        while True:
            page = self._call(f"list the versions of {key}", "list_object_versions", Bucket=self.bucket, Prefix=key, **marker)
            for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                if item["Key"] != key:
                    continue
                version = item.get("VersionId")
                if version and version != "null":
                    self._call(f"delete a version of {key}", "delete_object", Bucket=self.bucket, Key=key, VersionId=version)
                    deleted += 1
            if not page.get("IsTruncated"):
                break
            marker = {"KeyMarker": page["NextKeyMarker"], "VersionIdMarker": page.get("NextVersionIdMarker", "")}
        if self.head(key) is not None:  # an unversioned bucket (or the "null" version)
            self._call(f"delete {key}", "delete_object", Bucket=self.bucket, Key=key)
            deleted += 1
        return deleted

    def keys(self, prefix: str = "") -> Iterator[str]:
        token: dict[str, str] = {}
        while True:
            page = self._call("list objects", "list_objects_v2", Bucket=self.bucket, Prefix=prefix, **token)
            for item in page.get("Contents", []):
                yield str(item["Key"])
            if not page.get("IsTruncated"):
                return
            token = {"ContinuationToken": page["NextContinuationToken"]}


def _chunks(body: Any) -> Iterator[bytes]:
    try:
        while block := body.read(READ_BLOCK):
            yield block
    finally:
        body.close()
