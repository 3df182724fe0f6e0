"""Keys and certificates for a fleet deployment (Flower SuperLink TLS, SuperNode authentication).

A plant uses its own CA; `edgesnn fleet certs` makes a private one for a trial or a test. A
SuperNode proves who it is with an ECDSA key pair in OpenSSH format (Flower's requirement);
the server registers its public key before the node may join.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edgesnn.errors import EdgesnnError
from edgesnn.folders import require_file


def _write_new(files: list[tuple[Path, bytes, int]]) -> list[Path]:
    """Write new files, each with its mode from the start (a private key is never readable by
    others); all of them or none: an existing one refuses the lot before anything is written,
    so a CA certificate never outlives its key and a private key never sits beside another's .pub."""
    for path, _, _ in files:
        if path.exists():
            raise EdgesnnError(f"{path}: already exists; keys and certificates are not overwritten")
    written = []
    try:
        for path, data, mode in files:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            written.append(path)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
    except OSError as exc:
        for path in written:
            path.unlink(missing_ok=True)
        raise EdgesnnError(f"{exc.filename or files[0][0].parent}: cannot write there ({exc.strerror})") from None
    return written


def check_ca(path: Path) -> None:
    """One line now for a CA file that is missing or holds no certificate, where Flower would
    fail deep inside a connection attempt (or keep retrying)."""
    require_file(path, "CA certificate")
    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, ValueError, UnicodeDecodeError):
        raise EdgesnnError(f"{path}: not a PEM CA certificate") from None


def check_private_key(path: Path) -> None:
    """A device's own key must be the OpenSSH private key that `fleet keys` wrote (not its .pub)."""
    require_file(path, "device key")
    try:
        key = serialization.load_ssh_private_key(Path(path).read_bytes(), password=None)
    except (ValueError, TypeError, OSError, UnsupportedAlgorithm):
        raise EdgesnnError(f"{path}: not an OpenSSH private key (give the device the key from `edgesnn fleet keys` "
                           "without .pub)") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise EdgesnnError(f"{path}: Flower authenticates devices by elliptic-curve keys; make one with "
                           "`edgesnn fleet keys`")


def check_public_key(path: Path) -> bytes:
    """A device's registered key must be the OpenSSH public key that `fleet keys` wrote (.pub).
    Returns the key itself (without the file's comment), which tells two devices apart."""
    require_file(path, "device public key")
    try:
        key = serialization.load_ssh_public_key(Path(path).read_bytes())
    except (ValueError, TypeError, OSError, UnsupportedAlgorithm):
        raise EdgesnnError(f"{path}: not an OpenSSH public key (register the .pub from `edgesnn fleet keys`)") from None
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)


def check_server_tls(ca: Path, cert: Path, key: Path) -> None:
    """The server's certificate and key, checked before the SuperLink starts (where a bad one
    shows only as a SuperLink that never answers): PEM files, the key belongs to the
    certificate, the CA signed it, and it names 127.0.0.1, where the server's own ServerApp and
    health check connect."""
    check_ca(ca)
    loaded = {}
    # certificate files may hold a chain or a bundle: the server's own certificate comes first
    for name, path, load in (("server certificate", cert, x509.load_pem_x509_certificates),
                             ("server key", key, lambda b: serialization.load_pem_private_key(b, password=None)),
                             ("CA certificate", ca, x509.load_pem_x509_certificates)):
        require_file(path, name)
        try:
            loaded[name] = load(Path(path).read_bytes())
        except (ValueError, TypeError, OSError, UnsupportedAlgorithm):
            locked = " (or one protected by a password)" if name == "server key" else ""
            raise EdgesnnError(f"{path}: not a PEM {name}{locked}") from None
    chain, private, authorities = loaded["server certificate"], loaded["server key"], loaded["CA certificate"]
    certificate = chain[0]
    public = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if private.public_key().public_bytes(*public) != certificate.public_key().public_bytes(*public):
        raise EdgesnnError(f"{key}: not the private key of {cert}")
    if not any(_issued(certificate, issuer) for issuer in authorities + chain[1:]):
        raise EdgesnnError(f"{cert}: not signed by the CA {ca} (devices would refuse the server)")
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        names = None
    if names is None or ipaddress.ip_address("127.0.0.1") not in names.get_values_for_type(x509.IPAddress):
        raise EdgesnnError(f"{cert}: does not name 127.0.0.1, where the server's own processes connect "
                           "(`edgesnn fleet certs` adds it)")


def _issued(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether `issuer` signed `certificate` (the CA itself, or an intermediate of the chain)."""
    try:
        certificate.verify_directly_issued_by(issuer)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


_HOST = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def make_certificates(folder: Path, hosts: list[str], days: int = 365) -> dict[str, Path]:
    """A CA (ca.crt) and a server certificate (server.pem, server.key) for `hosts` (names or IPs).

    The SuperLink's own ServerApp process connects to it on 127.0.0.1, so that address is
    always among the certificate's names.
    """
    for host in hosts:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not _HOST.match(host):
                raise EdgesnnError(f"--host {host!r}: not a host name or IP address") from None
    folder = Path(folder)
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edgesnn fleet CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=days))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    names = []
    for host in dict.fromkeys([*hosts, "127.0.0.1", "localhost"]):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            # the names clients check are the alternative names; a common name holds at most 64 characters
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0] if hosts and len(hosts[0]) <= 64
                                                        else "edgesnn fleet server")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = _write_new([(folder / "ca.crt", ca.public_bytes(serialization.Encoding.PEM), 0o644),
                        (folder / "server.pem", cert.public_bytes(serialization.Encoding.PEM), 0o644),
                        (folder / "server.key", _pem_key(key), 0o600)])
    return dict(zip(("ca", "cert", "key"), paths))


def make_node_key(folder: Path, name: str) -> tuple[Path, Path]:
    """A SuperNode's key pair: `<name>` (private, OpenSSH ECDSA P-384) and `<name>.pub`."""
    if not _NAME.match(name):
        raise EdgesnnError(f"device name {name!r}: 1 to 64 letters, digits, '.', '_' or '-', starting with a "
                           "letter or digit (it names files in --out)")
    key = ec.generate_private_key(ec.SECP384R1())
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    folder = Path(folder)
    private_path, public_path = _write_new([(folder / name, private, 0o600), (folder / f"{name}.pub", public + b"\n", 0o644)])
    return private_path, public_path
