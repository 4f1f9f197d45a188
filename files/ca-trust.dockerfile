# The site's extra CA certificates (extra_ca_certificates in data; a TLS-inspecting proxy),
# put in by labhub (tasks/hub.py) where the Dockerfile says "# labhub: trust the extra CA
# certificates here": trusted by the system, and by pip, requests and node, which keep their
# own lists otherwise.
COPY ca-certificates/ /usr/local/share/ca-certificates/labhub/
RUN if command -v update-ca-certificates >/dev/null; then update-ca-certificates >/dev/null; fi
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
