"""A real, throwaway etcd on 127.0.0.1: random free ports, a temp data dir, stopped by PID."""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request

INSTALL_HINT = "etcd not found: install it with 'apt-get install etcd-server' to run the fleet tests"


class Certs:
    """A throwaway CA, a server certificate for 127.0.0.1/localhost and a client
    certificate, made with the openssl CLI; `other_ca` is a CA that signed neither."""

    def __init__(self, where: pathlib.Path) -> None:
        self.dir = where
        self.ca, self.ca_key = where / "ca.pem", where / "ca.key"
        self.server_cert, self.server_key = where / "server.pem", where / "server.key"
        self.client_cert, self.client_key = where / "client.pem", where / "client.key"
        self.other_ca = where / "other-ca.pem"
        self._make()

    def _run(self, *args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=self.dir)

    def _ca(self, cert: pathlib.Path, key: pathlib.Path, name: str) -> None:
        self._run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}")  # fmt: skip

    def _leaf(self, cert: pathlib.Path, key: pathlib.Path, name: str, ext: str) -> None:
        csr, extfile = self.dir / f"{name}.csr", self.dir / f"{name}.ext"
        extfile.write_text(ext)
        self._run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")  # fmt: skip
        self._run("x509", "-req", "-in", str(csr), "-CA", str(self.ca), "-CAkey", str(self.ca_key),
                  "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(extfile))  # fmt: skip

    def _make(self) -> None:
        self._ca(self.ca, self.ca_key, "selreload test CA")
        self._ca(self.other_ca, self.dir / "other-ca.key", "some other CA")
        server = "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:etcd.test\nextendedKeyUsage=serverAuth,clientAuth\n"
        self._leaf(self.server_cert, self.server_key, "server", server)
        self._leaf(self.client_cert, self.client_key, "client", "extendedKeyUsage=clientAuth\n")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EtcdServer:
    """One single-member etcd; `restart()` brings it back on the same ports and data."""

    def __init__(self, binary: str, data_dir: pathlib.Path, *, tls: Certs | None = None, token_ttl: int = 300) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.tls = tls
        self.token_ttl = token_ttl
        self.client_port = free_port()
        self.peer_port = free_port()
        self.endpoint = f"{'https' if tls else 'http'}://127.0.0.1:{self.client_port}"
        self.log_path = data_dir.parent / "etcd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        # Without a proxy: the health check must go to 127.0.0.1 even if http_proxy is set.
        self._http = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def start(self, timeout: float = 30.0) -> None:
        peer = f"http://127.0.0.1:{self.peer_port}"
        args = [
            self.binary,
            "--name=test",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={self.endpoint}",
            f"--advertise-client-urls={self.endpoint}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=test={peer}",
            "--log-level=error",
            f"--auth-token-ttl={self.token_ttl}",
        ]
        if self.tls is not None:
            args += [
                f"--cert-file={self.tls.server_cert}",
                f"--key-file={self.tls.server_key}",
                f"--trusted-ca-file={self.tls.ca}",
                "--client-cert-auth",
            ]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"etcd exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with self._opener().open(f"{self.endpoint}/health", timeout=1.0) as resp:
                    if b'"true"' in resp.read():
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"etcd not healthy after {timeout:g}s; see {self.log_path}")

    def _opener(self) -> urllib.request.OpenerDirector:
        if self.tls is None:
            return self._http
        context = ssl.create_default_context(cafile=str(self.tls.ca))
        context.load_cert_chain(str(self.tls.client_cert), str(self.tls.client_key))
        return urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )

    def stop(self, timeout: float = 15.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout)

    def restart(self) -> None:
        self.stop()
        self.start()
