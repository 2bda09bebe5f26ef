"""The local cluster's certificates, made with openssl: a CA, the API server's, an admin client's."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pki:
    folder: Path

    def path(self, name: str) -> Path:
        return self.folder / name

    def make(self, service_ip: str) -> None:
        """A CA, the API server's certificate, an admin client certificate, the SA signing key."""
        self.folder.mkdir(parents=True, exist_ok=True)
        ca, key = self.path("ca.crt"), self.path("ca.key")
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=codai-local-ca",
                 "-keyout", key, "-out", ca)
        sans = f"IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc,IP:{service_ip}"
        self._signed("apiserver", "/CN=kube-apiserver", f"subjectAltName={sans}")
        # system:masters: the cluster-admin the scripts, the controllers and Pulumi act as.
        self._signed("admin", "/O=system:masters/CN=codai-local-admin", "extendedKeyUsage=clientAuth")
        _openssl("genrsa", "-out", self.path("sa.key"), "2048")
        _openssl("rsa", "-in", self.path("sa.key"), "-pubout", "-out", self.path("sa.pub"))

    def _signed(self, name: str, subject: str, extension: str) -> None:
        key, csr, crt = self.path(f"{name}.key"), self.path(f"{name}.csr"), self.path(f"{name}.crt")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", key, "-out", csr)
        _openssl("x509", "-req", "-in", csr, "-CA", self.path("ca.crt"), "-CAkey", self.path("ca.key"),
                 "-CAcreateserial", "-days", "2", "-extfile", "/dev/stdin", "-out", crt, stdin=extension)


def _openssl(*args: str | Path, stdin: str | None = None) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, input=stdin, text=True)
