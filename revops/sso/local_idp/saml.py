"""A local SAML 2.0 identity provider for the tests and the demo: pysaml2's IdP (``saml2.server.Server``)
behind a tiny WSGI app, with people in memory.

``GET /sso`` (HTTP-Redirect binding) shows a login form; posting it answers the SP's ACS with
an auto-submitting HTML-POST form, as a real IdP does. The form's "mode" makes the faulty
answers the SP must refuse: an expired assertion, one for another audience, an unsigned one.

Signing: pysaml2 signs only through the xmlsec1 binary (its other backend needs
pyXMLSecurity). When the binary is on PATH it signs with it; otherwise the assertion is
signed with python-xmlsec (the manylinux wheel python3-saml already needs), so a newcomer's
machine with nothing but Python runs the same tests. ``signer`` says which one ran.
"""

from __future__ import annotations

import datetime as dt
import html
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
MFA_CONTEXT = "https://refeds.org/profile/mfa"
PASSWORD_CONTEXT = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"  # noqa: S105
MODES = ("normal", "expired", "wrong-audience", "unsigned")


@dataclass
class Person:
    email: str
    password: str
    name: str
    groups: list[str] = field(default_factory=list)


@dataclass
class ServiceProvider:
    entity_id: str
    acs_url: str


def make_certificate(common_name: str = "revops local SAML IdP") -> tuple[str, str]:
    """A fresh RSA key and self-signed certificate (PEM), valid for a year."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def _sp_metadata(sp: ServiceProvider) -> str:
    return (
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        f'entityID="{html.escape(sp.entity_id)}"><md:SPSSODescriptor '
        'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        "<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>"
        '<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
        f'Location="{html.escape(sp.acs_url)}" index="0" isDefault="true"/>'
        "</md:SPSSODescriptor></md:EntityDescriptor>"
    )


class LocalSamlIdP:
    def __init__(
        self,
        *,
        base_url: str,
        people: list[Person],
        service_providers: list[ServiceProvider],
        use_xmlsec_binary: bool | None = None,
    ) -> None:
        from saml2 import BINDING_HTTP_REDIRECT
        from saml2.config import IdPConfig
        from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_EMAILADDRESS
        from saml2.server import Server

        self.base_url = base_url.rstrip("/")
        self.people = {p.email.lower(): p for p in people}
        self.key_pem, self.cert_pem = make_certificate()
        self._dir = Path(tempfile.mkdtemp(prefix="revops-saml-idp-"))
        (self._dir / "key.pem").write_text(self.key_pem)
        (self._dir / "cert.pem").write_text(self.cert_pem)
        binary = shutil.which("xmlsec1")
        self.signer = (
            "xmlsec1" if (binary if use_xmlsec_binary is None else use_xmlsec_binary and binary) else "python-xmlsec"
        )
        self.responses: list[str] = []  # every SAMLResponse sent, for the replay tests
        config = {
            "entityid": f"{self.base_url}/metadata",
            "service": {
                "idp": {
                    "endpoints": {"single_sign_on_service": [(f"{self.base_url}/sso", BINDING_HTTP_REDIRECT)]},
                    "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                    "policy": {"default": {"lifetime": {"minutes": 5}, "name_form": NAME_FORMAT_URI}},
                    "want_authn_requests_signed": False,
                }
            },
            "key_file": str(self._dir / "key.pem"),
            "cert_file": str(self._dir / "cert.pem"),
            "metadata": {"inline": [_sp_metadata(sp) for sp in service_providers]},
            "crypto_backend": "xmlsec1" if self.signer == "xmlsec1" else "XMLSecurity",
            "xmlsec_binary": binary if self.signer == "xmlsec1" else None,
            "allow_unknown_attributes": True,
        }
        self.server = Server(config=IdPConfig().load(config))
        self.entity_id = config["entityid"]
        self.sso_url = f"{self.base_url}/sso"

    # --- WSGI ---------------------------------------------------------------------------

    def __call__(self, environ, start_response):
        path, method = environ.get("PATH_INFO", ""), environ["REQUEST_METHOD"]
        try:
            if path == "/metadata":
                from saml2.metadata import entity_descriptor

                return self._answer(start_response, "200 OK", str(entity_descriptor(self.server.config)), "text/xml")
            if path == "/sso" and method == "GET":
                query = parse_qs(environ.get("QUERY_STRING", ""))
                return self._answer(start_response, "200 OK", self._login_form(query))
            if path == "/sso" and method == "POST":
                length = int(environ.get("CONTENT_LENGTH") or 0)
                form = parse_qs(environ["wsgi.input"].read(length).decode())
                return self._answer(start_response, "200 OK", self._login(form))
        except LoginFailed as failed:
            return self._answer(start_response, "403 Forbidden", f"<p id='idp-error'>{html.escape(str(failed))}</p>")
        return self._answer(start_response, "404 Not Found", "not here")

    @staticmethod
    def _answer(start_response, status: str, body: str, content_type: str = "text/html; charset=utf-8"):
        data = body.encode()
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(data)))])
        return [data]

    def _login_form(self, query: dict) -> str:
        request = html.escape(query.get("SAMLRequest", [""])[0])
        relay = html.escape(query.get("RelayState", [""])[0])
        options = "".join(f'<option value="{m}">{m}</option>' for m in MODES)
        return (
            "<!doctype html><title>Local SAML IdP</title><h1>Local SAML IdP</h1>"
            f'<form method="post" action="/sso"><input type="hidden" name="SAMLRequest" value="{request}">'
            f'<input type="hidden" name="RelayState" value="{relay}">'
            '<label>Email <input name="email" id="email"></label>'
            '<label>Password <input name="password" id="password" type="password"></label>'
            '<label><input type="checkbox" name="mfa" id="mfa" value="1"> used a second factor</label>'
            f'<label>Answer <select name="mode" id="mode">{options}</select></label>'
            '<button type="submit" id="idp-submit">Sign in</button></form>'
        )

    def _login(self, form: dict) -> str:
        from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT

        def one(name: str) -> str:
            return form.get(name, [""])[0]

        person = self.people.get(one("email").strip().lower())
        if person is None or person.password != one("password"):
            raise LoginFailed("Unknown email or wrong password.")
        mode = one("mode") or "normal"
        if mode not in MODES:
            raise LoginFailed(f"Unknown mode {mode!r}.")
        request = self.server.parse_authn_request(one("SAMLRequest"), BINDING_HTTP_REDIRECT)
        xml = self.authn_response(request.message, person, mfa=one("mfa") == "1", mode=mode)
        encoded = __import__("base64").b64encode(xml).decode()
        self.responses.append(encoded)
        destination = request.message.assertion_consumer_service_url
        relay = html.escape(one("RelayState"))
        del BINDING_HTTP_POST  # the POST binding's form, written out so the page needs no script source
        return (
            "<!doctype html><title>Signing in…</title>"
            f'<form id="saml-post" method="post" action="{html.escape(destination)}">'
            f'<input type="hidden" name="SAMLResponse" value="{encoded}">'
            f'<input type="hidden" name="RelayState" value="{relay}">'
            '<noscript><button type="submit">Continue</button></noscript></form>'
            "<script>document.getElementById('saml-post').submit()</script>"
        )

    def authn_response(self, authn_request, person: Person, *, mfa: bool, mode: str = "normal") -> bytes:
        """The signed Response to an AuthnRequest (``mode`` breaks it the way the name says)."""
        from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NameID

        args = self.server.response_args(authn_request)
        response = self.server.create_authn_response(
            {"email": [person.email], "name": [person.name], "groups": list(person.groups)},
            userid=person.email,
            name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=person.email),
            authn={"class_ref": MFA_CONTEXT if mfa else PASSWORD_CONTEXT, "authn_auth": self.entity_id},
            sign_assertion=False,
            sign_response=False,
            **args,
        )
        root = etree.fromstring(str(response).encode())
        assertion = root.find(f"{{{SAML}}}Assertion")
        if mode == "expired":
            past = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
            for element in assertion.iter():
                if element.get("NotOnOrAfter"):
                    element.set("NotOnOrAfter", past)
        if mode == "wrong-audience":
            for audience in assertion.iter(f"{{{SAML}}}Audience"):
                audience.text = "https://some-other-application.example/saml"
        if mode != "unsigned":
            self._sign(root, assertion)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    def _sign(self, root, assertion) -> None:
        if self.signer == "xmlsec1":
            from saml2.sigver import pre_signature_part

            signature = etree.fromstring(
                str(
                    pre_signature_part(
                        ident=assertion.get("ID"),
                        public_key="".join(line for line in self.cert_pem.splitlines() if "-----" not in line),
                        sign_alg="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                        digest_alg="http://www.w3.org/2001/04/xmlenc#sha256",
                    )
                ).encode()
            )
            assertion.insert(1, signature)  # after the Issuer, as the schema wants
            signed = self.server.sec.sign_statement(
                etree.tostring(root).decode(),
                node_name=f"{SAML}:Assertion",
                key_file=str(self._dir / "key.pem"),
                node_id=assertion.get("ID"),
            )
            new_root = etree.fromstring(signed.encode() if isinstance(signed, str) else signed)
            root.replace(root.find(f"{{{SAML}}}Assertion"), new_root.find(f"{{{SAML}}}Assertion"))
            return
        from onelogin.saml2.constants import OneLogin_Saml2_Constants as C
        from onelogin.saml2.utils import OneLogin_Saml2_Utils

        signed = OneLogin_Saml2_Utils.add_sign(
            etree.tostring(assertion),
            self.key_pem,
            self.cert_pem,
            sign_algorithm=C.RSA_SHA256,
            digest_algorithm=C.SHA256,
        )
        root.replace(assertion, etree.fromstring(signed))

    # --- serving ------------------------------------------------------------------------


class LoginFailed(Exception):
    pass


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        return


class _ThreadingServer(WSGIServer):
    daemon_threads = True

    def process_request(self, request, client_address):
        threading.Thread(target=self._handle, args=(request, client_address), daemon=True).start()

    def _handle(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        finally:
            self.shutdown_request(request)


def serve(app, host: str = "127.0.0.1", port: int = 0):
    """Serve ``app`` in a background thread; returns the server (``server_port``, ``shutdown()``)."""
    server = make_server(host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def serve_forever(app, host: str = "127.0.0.1", port: int = 0) -> None:
    """Serve ``app`` in the foreground (the IdP processes and ``manage.py sso_demo``)."""
    make_server(host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler).serve_forever()
