"""sushy-tools' Redfish emulator (an independent implementation) in a subprocess, for the tests.

Its fake systems driver keeps each system's power in a SQLite file under our own state
directory, and applies a power change 1 to 11 s after the request, as real hardware might:
tests poll with a deadline. HTTP basic auth comes from an htpasswd file (bcrypt), so wrong
credentials answer 401. Optionally HTTPS, with a certificate signed by a throwaway CA.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from receiver.domain.model import BmcTarget, Secret
from receiver.lab.redis_server import free_port

USERNAME = "admin"
START_DEADLINE_S = 60.0
START_ATTEMPTS = 3
STOP_DEADLINE_S = 20.0
_EMULATOR = "import sys; from sushy_tools.emulator.main import main; sys.exit(main())"


@dataclass(frozen=True)
class InsecureTarget(BmcTarget):
    """BmcTarget with the proposed `insecure` flag (until BmcTarget has it)."""

    insecure: bool = False


@dataclass
class Emulator:
    scheme: str
    port: int
    password: str
    systems: dict[str, str]  # name -> uuid (the system id)
    workdir: Path
    ca_file: Path | None = None
    secrets: set[str] = field(default_factory=set)

    @property
    def origin(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.workdir / "emulator.log"

    def system_path(self, name: str) -> str:
        return f"/redfish/v1/Systems/{self.systems[name]}"

    def target(
        self,
        system: str | None = None,
        *,
        host: str | None = None,
        password: str | None = None,
        username: str = USERNAME,
        insecure: bool = False,
    ) -> BmcTarget:
        address = self.origin + (self.system_path(system) if system else "")
        return InsecureTarget(
            host=host or system or next(iter(self.systems)),
            address=address,
            port=623,  # the inventory's default: the URL's port wins
            username=username,
            password=Secret(self.password if password is None else password),
            driver="redfish",
            insecure=insecure,
        )

    def reset_requests(self, name: str) -> int:
        """How many Reset actions the emulator received for system `name` (its request log)."""
        line = f"POST {self.system_path(name)}/Actions/ComputerSystem.Reset"
        return self.log_file.read_text(encoding="utf-8").count(line)


def _bcrypt_line(username: str, password: str) -> str:
    import bcrypt  # sushy-tools' own dependency, for its htpasswd file

    return f"{username}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}\n"


def _certificates(workdir: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it: (ca, cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Lazarus test BMC CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (workdir / "ca.pem", workdir / "server.pem", workdir / "server-key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


@contextmanager
def running_emulator(workdir: Path, systems: dict[str, str], *, tls: bool = False) -> Iterator[Emulator]:
    """Start sushy-emulator with fake systems {name: "On" | "Off"}; yield once it answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    password = "Lz-rf-" + secrets.token_hex(8)
    (workdir / "htpasswd").write_text(_bcrypt_line(USERNAME, password), encoding="utf-8")
    ids = {name: str(uuid.uuid5(uuid.NAMESPACE_URL, f"lazarus-test/{workdir}/{name}")) for name in systems}
    config = {
        "SUSHY_EMULATOR_LISTEN_IP": "127.0.0.1",
        "SUSHY_EMULATOR_FAKE_DRIVER": True,
        "SUSHY_EMULATOR_AUTH_FILE": str(workdir / "htpasswd"),
        # Our own state: the default (/tmp/sushy-emulator) would carry power states across runs.
        "SUSHY_EMULATOR_STATE_DIR": str(workdir / "state"),
        "SUSHY_EMULATOR_FAKE_SYSTEMS": [
            {"uuid": ids[name], "name": name, "power_state": power, "external_notifier": False, "nics": []}
            for name, power in systems.items()
        ],
    }
    ca_file = None
    if tls:
        ca_file, cert, key = _certificates(workdir)
        config |= {"SUSHY_EMULATOR_SSL_CERT": str(cert), "SUSHY_EMULATOR_SSL_KEY": str(key)}
    config_file = workdir / "emulator.conf"
    # The config file is Python; repr() of these literals is Python.
    config_file.write_text(
        "".join(f"{name} = {value!r}\n" for name, value in config.items()), encoding="utf-8"
    )
    emulator = Emulator(
        scheme="https" if tls else "http",
        port=0,
        password=password,
        systems=ids,
        workdir=workdir,
        ca_file=ca_file,
        # The password, and the Authorization header that carries it.
        secrets={password, base64.b64encode(f"{USERNAME}:{password}".encode()).decode()},
    )
    for attempt in range(1, START_ATTEMPTS + 1):
        # A free port can be taken between our check and the emulator's bind: then try another.
        emulator.port = free_port()
        with emulator.log_file.open("w", encoding="utf-8") as log:
            process = subprocess.Popen(
                [sys.executable, "-c", _EMULATOR, "--config", str(config_file), "--port", str(emulator.port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )
        try:
            if not _wait_until_answering(emulator, process, last_attempt=attempt == START_ATTEMPTS):
                continue
            yield emulator
            return
        finally:
            _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_answering(
    emulator: Emulator, process: subprocess.Popen[bytes], *, last_attempt: bool
) -> bool:
    """The service root answers without credentials once the emulator listens. False when it
    could not bind its port (and another try is left)."""
    import ssl

    context = ssl.create_default_context(cafile=emulator.ca_file) if emulator.ca_file else None
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            if not last_attempt and "Address already in use" in emulator.log_file.read_text(encoding="utf-8"):
                return False
            raise RuntimeError(f"sushy-emulator exited: {emulator.log_file.read_text(encoding='utf-8')}")
        try:
            with urllib.request.urlopen(
                f"{emulator.origin}/redfish/v1/", timeout=5, context=context
            ) as answer:
                if answer.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"sushy-emulator not answering: {emulator.log_file.read_text(encoding='utf-8')}")
