"""What each finding type means: title, CWE, OWASP Top 10 (2021) category, severity, remediation.

Detection code never spells these out; a check reports ``ctx.report("reflected-xss", ...)`` and
the metadata comes from here, so reports, SARIF rules and the UI read one source.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Severity(IntEnum):
    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> Severity:
        try:
            return cls[value.strip().upper()]
        except KeyError as exc:
            names = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {value!r}; expected one of {names}") from exc


A01 = "A01:2021-Broken Access Control"
A02 = "A02:2021-Cryptographic Failures"
A03 = "A03:2021-Injection"
A05 = "A05:2021-Security Misconfiguration"
A06 = "A06:2021-Vulnerable and Outdated Components"
A08 = "A08:2021-Software and Data Integrity Failures"


@dataclass(frozen=True)
class FindingType:
    id: str
    title: str
    cwe: int
    owasp: str
    severity: Severity
    description: str
    remediation: str

    @property
    def cwe_id(self) -> str:
        return f"CWE-{self.cwe}"


_L, _M, _H, _I = Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.INFO

_TYPES = (
    # Transport security
    FindingType(
        "tls-cert-expired",
        "TLS certificate has expired",
        298,
        A02,
        _H,
        "Browsers refuse the connection or train users to click through warnings.",
        "Renew the certificate and automate renewal (e.g. ACME).",
    ),
    FindingType(
        "tls-cert-not-yet-valid",
        "TLS certificate is not yet valid",
        298,
        A02,
        _M,
        "The certificate's validity starts in the future.",
        "Check the server clock and the certificate's notBefore date.",
    ),
    FindingType(
        "tls-cert-expiring-soon",
        "TLS certificate expires soon",
        298,
        A02,
        _L,
        "The certificate expires within 30 days.",
        "Renew the certificate now and automate renewal.",
    ),
    FindingType(
        "tls-cert-hostname-mismatch",
        "TLS certificate does not match the host name",
        297,
        A02,
        _H,
        "The certificate's subject alternative names do not cover the scanned host.",
        "Serve a certificate whose SAN list includes this host name.",
    ),
    FindingType(
        "tls-cert-self-signed",
        "TLS certificate is self-signed",
        295,
        A02,
        _M,
        "No trusted authority vouches for the certificate; clients cannot tell it from an attacker's.",
        "Use a certificate issued by a publicly trusted CA (or your internal CA for internal hosts).",
    ),
    FindingType(
        "tls-cert-untrusted",
        "TLS certificate chain is not trusted",
        295,
        A02,
        _M,
        "The chain does not lead to a trusted root (missing intermediate or unknown CA).",
        "Serve the full chain and use a certificate from a trusted CA.",
    ),
    FindingType(
        "tls-legacy-protocol",
        "Server accepts TLS 1.0 or 1.1",
        327,
        A02,
        _M,
        "TLS 1.0 and 1.1 are deprecated (RFC 8996).",
        "Disable TLS 1.0 and 1.1; offer TLS 1.2 and 1.3 only.",
    ),
    FindingType(
        "https-not-enforced",
        "HTTP is not redirected to HTTPS",
        319,
        A02,
        _M,
        "The site answers over plain HTTP without redirecting to HTTPS, so traffic can be read and changed.",
        "Redirect every plain-HTTP request to the same URL over HTTPS (301), then enable HSTS.",
    ),
    FindingType(
        "hsts-missing",
        "Strict-Transport-Security header is missing",
        319,
        A05,
        _L,
        "Without HSTS a network attacker can downgrade the first request to HTTP.",
        "Send Strict-Transport-Security: max-age=31536000; includeSubDomains on HTTPS responses.",
    ),
    FindingType(
        "hsts-weak",
        "Strict-Transport-Security max-age is too short or invalid",
        319,
        A05,
        _L,
        "A max-age under six months (15768000 s) protects returning visitors only briefly.",
        "Use max-age of at least 15768000, ideally 31536000 with includeSubDomains.",
    ),
    FindingType(
        "insecure-password-form",
        "Password form served or submitted over HTTP",
        319,
        A02,
        _M,
        "Credentials typed into this form travel in clear text.",
        "Serve the page and the form action over HTTPS only.",
    ),
    FindingType(
        "mixed-content",
        "HTTPS page loads resources over HTTP",
        319,
        A02,
        _M,
        "An HTTP script, stylesheet, frame or image on an HTTPS page can be read or replaced in transit.",
        "Load every sub-resource over HTTPS (or add upgrade-insecure-requests to the CSP).",
    ),
    # Security headers
    FindingType(
        "csp-missing",
        "Content-Security-Policy header is missing",
        693,
        A05,
        _M,
        "Without a CSP an injected script runs with the page's full privileges.",
        "Send a restrictive policy, e.g. default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'.",
    ),
    FindingType(
        "csp-report-only",
        "Content-Security-Policy is only in report-only mode",
        693,
        A05,
        _L,
        "A Content-Security-Policy-Report-Only header reports but blocks nothing.",
        "Enforce the policy with the Content-Security-Policy header once reports are clean.",
    ),
    FindingType(
        "csp-unsafe-inline",
        "CSP allows inline scripts ('unsafe-inline')",
        693,
        A05,
        _M,
        "'unsafe-inline' in script-src lets injected inline scripts run, defeating the CSP's XSS protection.",
        "Remove 'unsafe-inline' from script-src; use nonces or hashes for the inline scripts you need.",
    ),
    FindingType(
        "csp-unsafe-eval",
        "CSP allows eval ('unsafe-eval')",
        693,
        A05,
        _M,
        "'unsafe-eval' lets strings be executed as code (eval, new Function).",
        "Remove 'unsafe-eval' and refactor code that builds code from strings.",
    ),
    FindingType(
        "csp-wildcard-source",
        "CSP script sources are overly broad",
        693,
        A05,
        _M,
        "A wildcard, scheme-only (https:, http:, data:) source in script-src lets scripts load from anywhere.",
        "List the exact origins scripts may load from, or use nonces with 'strict-dynamic'.",
    ),
    FindingType(
        "csp-missing-directive",
        "CSP lacks an important directive",
        693,
        A05,
        _L,
        "object-src, base-uri and frame-ancestors do not fall back to default-src (or default-src is absent).",
        "Add object-src 'none', base-uri 'none' (or 'self') and frame-ancestors 'none' (or 'self').",
    ),
    FindingType(
        "clickjacking",
        "Page can be framed by any site (no X-Frame-Options or frame-ancestors)",
        1021,
        A05,
        _M,
        "Another site can load this page in an invisible frame and trick users into clicking on it.",
        "Send Content-Security-Policy: frame-ancestors 'none' (or 'self') and X-Frame-Options: DENY.",
    ),
    FindingType(
        "nosniff-missing",
        "X-Content-Type-Options: nosniff is missing",
        693,
        A05,
        _L,
        "Browsers may sniff a response into an executable type (MIME confusion).",
        "Send X-Content-Type-Options: nosniff on every response.",
    ),
    FindingType(
        "referrer-policy-weak",
        "Referrer-Policy is missing or leaks full URLs",
        200,
        A05,
        _L,
        "Full URLs (with tokens in query strings) can leak to other sites through the Referer header.",
        "Send Referrer-Policy: strict-origin-when-cross-origin (or no-referrer).",
    ),
    FindingType(
        "permissions-policy-missing",
        "Permissions-Policy header is missing",
        693,
        A05,
        _I,
        "Powerful browser features (camera, geolocation...) are not restricted for this page and its frames.",
        "Send a Permissions-Policy that disables the features you do not use, e.g. camera=(), geolocation=().",
    ),
    FindingType(
        "isolation-header-missing",
        "Cross-origin isolation header is missing (COOP/CORP)",
        693,
        A05,
        _I,
        "Without Cross-Origin-Opener-Policy / Cross-Origin-Resource-Policy, other origins can keep references to the window or embed the resource (Spectre-class leaks).",
        "Send Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Resource-Policy: same-origin (or same-site).",
    ),
    # Cookies
    FindingType(
        "cookie-no-secure",
        "Cookie without the Secure flag",
        614,
        A05,
        _L,
        "The cookie is also sent over plain HTTP, where it can be read in transit.",
        "Set the Secure attribute (and serve the site over HTTPS only).",
    ),
    FindingType(
        "cookie-no-httponly",
        "Cookie without the HttpOnly flag",
        1004,
        A05,
        _L,
        "Scripts (including injected ones) can read the cookie.",
        "Set the HttpOnly attribute on session and authentication cookies.",
    ),
    FindingType(
        "cookie-no-samesite",
        "Cookie without a SameSite attribute",
        1275,
        A01,
        _L,
        "The cookie may be sent on cross-site requests, which helps CSRF.",
        "Set SameSite=Lax (or Strict); SameSite=None only together with Secure, when really needed.",
    ),
    # CORS
    FindingType(
        "cors-reflected-origin",
        "CORS reflects any origin and allows credentials",
        942,
        A01,
        _H,
        "Any website can read authenticated responses from this origin in the visitor's browser.",
        "Allow only a fixed list of trusted origins; never echo the Origin header with credentials.",
    ),
    FindingType(
        "cors-null-origin",
        "CORS trusts the 'null' origin with credentials",
        942,
        A01,
        _M,
        "Sandboxed iframes and local files send Origin: null, so any site can obtain it.",
        "Never allow the null origin.",
    ),
    FindingType(
        "cors-wildcard-credentials",
        "CORS combines a wildcard origin with credentials",
        942,
        A05,
        _L,
        "Access-Control-Allow-Origin: * together with Access-Control-Allow-Credentials: true shows a misconfigured policy.",
        "Use an explicit origin list when credentials are needed; drop Allow-Credentials otherwise.",
    ),
    # Disclosure
    FindingType(
        "version-disclosure",
        "Server or framework version disclosed in headers",
        497,
        A05,
        _L,
        "Version banners tell an attacker which known vulnerabilities to try.",
        "Remove version numbers from Server and drop X-Powered-By, X-AspNet-Version and similar headers.",
    ),
    FindingType(
        "stack-trace",
        "Stack trace or error details in a response",
        209,
        A05,
        _M,
        "Stack traces reveal code paths, library versions and sometimes data.",
        "Show a generic error page and log the details server-side.",
    ),
    FindingType(
        "debug-page",
        "Framework debug mode is enabled",
        489,
        A05,
        _H,
        "Debug pages expose settings, source and sometimes an interactive console.",
        "Turn debug mode off in production (DEBUG = False, no Werkzeug debugger).",
    ),
    FindingType(
        "exposed-vcs-metadata",
        "Version-control metadata is publicly readable",
        527,
        A05,
        _H,
        "An exposed .git/.svn/.hg folder lets anyone download the source code and its history.",
        "Block access to VCS folders in the web server and do not deploy them.",
    ),
    FindingType(
        "exposed-env-file",
        "Environment or configuration file is publicly readable",
        538,
        A05,
        _H,
        "Files such as .env usually contain secrets: database passwords, API keys.",
        "Remove the file from the web root, block dotfiles, and rotate every secret it contained.",
    ),
    FindingType(
        "exposed-backup-file",
        "Backup or temporary file is publicly readable",
        530,
        A05,
        _M,
        "Backup copies are served as plain text, exposing source code and configuration.",
        "Remove backup files from the web root and block *.bak, *~, *.old and similar.",
    ),
    FindingType(
        "exposed-status-page",
        "Server status or diagnostics page is public",
        200,
        A05,
        _M,
        "Pages such as server-status, phpinfo() or /actuator/env expose internals and sometimes secrets.",
        "Restrict diagnostics endpoints to administrators or disable them.",
    ),
    FindingType(
        "directory-listing",
        "Directory listing is enabled",
        548,
        A01,
        _L,
        "The server lists a folder's files, exposing files that were never linked.",
        "Disable automatic indexes (Options -Indexes, autoindex off).",
    ),
    FindingType(
        "http-trace-enabled",
        "HTTP TRACE method is enabled",
        693,
        A05,
        _L,
        "TRACE echoes the request, including headers, which helps cross-site tracing attacks.",
        "Disable the TRACE method in the web server.",
    ),
    FindingType(
        "http-dangerous-method",
        "Dangerous HTTP methods are advertised",
        650,
        A05,
        _M,
        "The server advertises methods such as PUT or DELETE that may let clients change files.",
        "Allow only the methods the application needs; disable WebDAV where unused.",
    ),
    FindingType(
        "security-txt-missing",
        "security.txt is missing",
        1059,
        A05,
        _I,
        "Researchers have no published way to report a vulnerability (RFC 9116).",
        "Publish /.well-known/security.txt with Contact and Expires fields.",
    ),
    FindingType(
        "security-txt-invalid",
        "security.txt is expired or incomplete",
        1059,
        A05,
        _I,
        "The file lacks a Contact or Expires field, or its Expires date has passed (RFC 9116).",
        "Keep Contact and a future Expires date in /.well-known/security.txt.",
    ),
    # Input handling
    FindingType(
        "reflected-xss",
        "Reflected input without encoding (likely reflected XSS)",
        79,
        A03,
        _H,
        "A parameter's value comes back in the page with HTML metacharacters intact, so script can be injected.",
        "Encode output for its context (HTML, attribute, JavaScript, URL) with the template engine's auto-escaping.",
    ),
    FindingType(
        "open-redirect",
        "Open redirect",
        601,
        A01,
        _M,
        "A parameter sends visitors to any external site, which phishing campaigns abuse.",
        "Redirect only to relative paths or to an allow-list of destinations.",
    ),
    FindingType(
        "host-header-injection",
        "Host header is trusted for generated URLs",
        644,
        A05,
        _M,
        "Links or redirects are built from Host/X-Forwarded-Host, enabling password-reset poisoning and cache poisoning.",
        "Build absolute URLs from a configured public URL; trust X-Forwarded-Host only from your proxy.",
    ),
    # Components
    FindingType(
        "vulnerable-js-library",
        "JavaScript library with known vulnerabilities",
        1395,
        A06,
        _M,
        "A library version served by this site has published vulnerabilities (retire.js data).",
        "Upgrade the library to a version without known vulnerabilities.",
    ),
    FindingType(
        "sri-missing",
        "Third-party script without Subresource Integrity",
        353,
        A08,
        _L,
        "If the third-party host is compromised, its script runs with this page's privileges.",
        "Add integrity= and crossorigin= attributes to third-party <script> tags, or self-host them.",
    ),
)

DEFINITIONS: dict[str, FindingType] = {t.id: t for t in _TYPES}


def definition(type_id: str) -> FindingType:
    try:
        return DEFINITIONS[type_id]
    except KeyError as exc:
        raise KeyError(f"unknown finding type {type_id!r}: add it to definitions.py") from exc
