"""Certificates, service-account keys and kubeconfigs for the sandbox control plane.

Everything is generated fresh per sandbox (EC P-256: key generation is instant, unlike RSA)
and written under ``<state>/pki``; nothing is shared with a real cluster.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = dt.timedelta(days=365)


@dataclass(frozen=True)
class ClientCert:
    """A client identity: the API server maps CN to the user and O to its groups."""

    name: str
    common_name: str
    organization: str | None = None


# Identities of the components; admin is in system:masters so the user can do anything.
CLIENTS = (
    ClientCert("admin", "berth-sandbox-admin", "system:masters"),
    ClientCert("controller-manager", "system:kube-controller-manager"),
    ClientCert("scheduler", "system:kube-scheduler"),
    # kwok writes node and pod status for every fake node: it acts as all kubelets at once.
    ClientCert("kwok", "kwok-controller", "system:masters"),
    # The API server's identity towards aggregated APIs; configuring it also gives the
    # controllers the request-header CA they look up at start (else they log errors forever).
    ClientCert("front-proxy-client", "front-proxy-client"),
    # The API server's identity towards kubelets (logs, exec of real nodes; kubelet authorizes
    # it by SubjectAccessReview, which system:masters passes).
    ClientCert("apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters"),
)


@dataclass(frozen=True)
class Pki:
    """Paths of the generated files."""

    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def serving_cert(self) -> Path:
        return self.dir / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        return self.dir / "apiserver.key"

    @property
    def sa_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "sa.pub"

    @property
    def front_proxy_cert(self) -> Path:
        return self.client_cert("front-proxy-client")

    @property
    def front_proxy_key(self) -> Path:
        return self.client_key("front-proxy-client")

    @property
    def kubelet_client_cert(self) -> Path:
        return self.client_cert("apiserver-kubelet-client")

    @property
    def kubelet_client_key(self) -> Path:
        return self.client_key("apiserver-kubelet-client")

    def client_cert(self, name: str) -> Path:
        return self.dir / f"{name}.crt"

    def client_key(self, name: str) -> Path:
        return self.dir / f"{name}.key"


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
    )


def generate(pki_dir: Path, service_ip: str) -> Pki:
    """Write a CA, the API server's serving cert, client certs and the service-account key pair."""
    pki_dir.mkdir(parents=True, exist_ok=True)
    pki = Pki(pki_dir)

    ca_key = _new_key()
    ca_name = _name("berth-sandbox-ca")
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(pki.ca_cert, _cert_pem(ca))
    _write(pki.ca_key, _key_pem(ca_key), private=True)  # kube-controller-manager signs CSRs with it

    def issue(
        key: ec.EllipticCurvePrivateKey,
        subject: x509.Name,
        usage: x509.ObjectIdentifier,
        sans: list[x509.GeneralName] | None = None,
    ) -> x509.Certificate:
        builder = _builder(subject, ca_name, key.public_key()).add_extension(
            x509.ExtendedKeyUsage([usage]), critical=False
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(ca_key, hashes.SHA256())

    serving_key = _new_key()
    sans: list[x509.GeneralName] = [
        x509.DNSName(n)
        for n in (
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        )
    ]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ("127.0.0.1", service_ip)]
    serving = issue(serving_key, _name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH, sans)
    _write(pki.serving_cert, _cert_pem(serving))
    _write(pki.serving_key, _key_pem(serving_key), private=True)

    for client in CLIENTS:
        key = _new_key()
        cert = issue(key, _name(client.common_name, client.organization), ExtendedKeyUsageOID.CLIENT_AUTH)
        _write(pki.client_cert(client.name), _cert_pem(cert))
        _write(pki.client_key(client.name), _key_pem(key), private=True)

    sa_key = _new_key()
    _write(pki.sa_key, _key_pem(sa_key), private=True)
    _write(
        pki.sa_pub,
        sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
    )
    return pki


def write_kubeconfig(path: Path, pki: Pki, client: str, server: str, context: str) -> None:
    """Write a self-contained kubeconfig (certificates inlined) so it keeps working when copied."""

    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": server, "certificate-authority-data": b64(pki.ca_cert)}}],
        "users": [
            {
                "name": context,
                "user": {
                    "client-certificate-data": b64(pki.client_cert(client)),
                    "client-key-data": b64(pki.client_key(client)),
                },
            }
        ],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
        "current-context": context,
    }
    # JSON is valid YAML: every Kubernetes client reads it, and it needs no YAML dependency here.
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)


def issue_client(pki: Pki, client: ClientCert) -> None:
    """Issue one more client certificate from the sandbox CA (a real node's kubelet, CoreDNS)."""
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = _new_key()
    cert = (
        _builder(_name(client.common_name, client.organization), ca_cert.subject, key.public_key())
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(pki.client_cert(client.name), _cert_pem(cert))
    _write(pki.client_key(client.name), _key_pem(key), private=True)
