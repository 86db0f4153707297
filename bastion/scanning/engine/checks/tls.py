"""TLS: certificate validity, expiry soon, host name, self-signed/untrusted chain, old protocols."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import warnings
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from cryptography import x509

from bastion.scanning.engine.checks import Check
from bastion.scanning.engine.context import ScanContext
from bastion.scanning.engine.errors import TargetTimeout, TargetTLSError, TargetUnreachable

EXPIRY_WARNING = timedelta(days=30)
HANDSHAKE_TIMEOUT_S = 5.0


async def _handshake(
    host: str, address: str, port: int, context: ssl.SSLContext
) -> tuple[bytes, str]:
    """Complete a TLS handshake; return the peer certificate (DER) and the protocol version."""
    server_hostname = None if _is_ip(host) else host
    try:
        async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
            _reader, writer = await asyncio.open_connection(
                address, port, ssl=context, server_hostname=server_hostname
            )
    except TimeoutError as exc:
        raise TargetTimeout(f"TLS handshake with {host}:{port} timed out") from exc
    except ssl.SSLError:
        raise
    except OSError as exc:
        raise TargetUnreachable(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from exc
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) or b""
        version = ssl_object.version() or ""
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (OSError, ssl.SSLError):
            pass
    return der, version


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _hostname_matches(cert: x509.Certificate, host: str) -> bool:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    if _is_ip(host):
        wanted = ipaddress.ip_address(host)
        return any(ip == wanted for ip in san.get_values_for_type(x509.IPAddress))
    host = host.lower().rstrip(".")
    for name in san.get_values_for_type(x509.DNSName):
        name = name.lower().rstrip(".")
        if name == host:
            return True
        if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:]:
            return True
    return False


def _no_verify_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _accept_legacy(context: ssl.SSLContext, legacy_only: bool = False) -> bool:
    """Let ``context`` speak TLS 1.0/1.1 (or only those); False if this OpenSSL cannot."""
    try:
        with warnings.catch_warnings():
            # Deprecated on purpose: the check asks whether the server still accepts them.
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
            if legacy_only:
                context.maximum_version = ssl.TLSVersion.TLSv1_1
        context.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        return False
    return True


def _inspect_context(legacy_only: bool = False) -> ssl.SSLContext | None:
    """A context that accepts anything, to read the certificate even from old servers."""
    context = _no_verify_context()
    return context if _accept_legacy(context, legacy_only) else None


class TlsCheck(Check):
    name = "tls"
    finding_types = (
        "tls-cert-expired",
        "tls-cert-not-yet-valid",
        "tls-cert-expiring-soon",
        "tls-cert-hostname-mismatch",
        "tls-cert-self-signed",
        "tls-cert-untrusted",
        "tls-legacy-protocol",
    )

    async def run(self, ctx: ScanContext) -> None:
        parts = urlsplit(ctx.target)
        if parts.scheme != "https":
            return
        host = parts.hostname or ""
        port = parts.port or 443
        url = f"https://{parts.netloc}/"
        ctx.http.scope.require(url)
        address = (await ctx.http.policy.resolve(host, port))[0]
        ctx.http.spend()
        try:
            der, _version = await _handshake(
                host, address, port, _inspect_context() or _no_verify_context()
            )
        except ssl.SSLError as exc:
            raise TargetTLSError(f"TLS handshake with {host}:{port} failed: {exc}") from exc
        ctx.cover(url)  # the handshake answered: this scan examined the host's TLS
        cert = x509.load_der_x509_certificate(der)
        now = datetime.now(UTC)
        subject = cert.subject.rfc4514_string()
        if cert.not_valid_after_utc < now:
            self.report(
                ctx,
                "tls-cert-expired",
                url=url,
                evidence=f"{subject} expired on {cert.not_valid_after_utc:%Y-%m-%d}",
            )
        elif cert.not_valid_after_utc - now < EXPIRY_WARNING:
            self.report(
                ctx,
                "tls-cert-expiring-soon",
                url=url,
                evidence=f"{subject} expires on {cert.not_valid_after_utc:%Y-%m-%d}",
            )
        if cert.not_valid_before_utc > now:
            self.report(
                ctx,
                "tls-cert-not-yet-valid",
                url=url,
                evidence=f"{subject} is valid from {cert.not_valid_before_utc:%Y-%m-%d}",
            )
        if not _hostname_matches(cert, host):
            self.report(
                ctx,
                "tls-cert-hostname-mismatch",
                url=url,
                evidence=f"certificate for {subject} does not list {host}",
            )
        await self._check_chain(ctx, cert, host, address, port, url)
        await self._check_legacy(ctx, host, address, port, url)

    async def _check_chain(
        self,
        ctx: ScanContext,
        cert: x509.Certificate,
        host: str,
        address: str,
        port: int,
        url: str,
    ) -> None:
        context = ssl.create_default_context(
            cafile=str(ctx.options.trust_roots) if ctx.options.trust_roots else None
        )
        context.check_hostname = False
        _accept_legacy(context)  # judge the chain even on a server that only speaks TLS 1.0
        ctx.http.spend()
        try:
            await _handshake(host, address, port, context)
        except ssl.SSLCertVerificationError as exc:
            if exc.verify_code in {9, 10}:  # not yet valid / expired: reported above
                return
            self_signed = cert.issuer == cert.subject
            self.report(
                ctx,
                "tls-cert-self-signed" if self_signed else "tls-cert-untrusted",
                url=url,
                evidence=f"verification failed: {exc.verify_message}",
            )
        except ssl.SSLError as exc:
            raise TargetTLSError(f"TLS handshake with {host}:{port} failed: {exc}") from exc

    async def _check_legacy(
        self, ctx: ScanContext, host: str, address: str, port: int, url: str
    ) -> None:
        context = _inspect_context(legacy_only=True)
        if context is None:
            return
        ctx.http.spend()
        try:
            _, version = await _handshake(host, address, port, context)
        except (ssl.SSLError, TargetUnreachable, TargetTimeout):
            return
        self.report(
            ctx, "tls-legacy-protocol", url=url, evidence=f"handshake succeeded with {version}"
        )
