"""Register Swift in Keystone's catalog for the tests.

Usage: swift_setup.py KEYSTONE_URL ADMIN_USER ADMIN_PASSWORD ADMIN_PROJECT ENDPOINT_URL

Makes sure there is exactly one service of type `object-store` (named `swift`) whose
`internal` and `public` endpoints in RegionOne are ENDPOINT_URL (a template such as
http://127.0.0.1:58080/v1/AUTH_%(tenant_id)s, which Keystone fills in per project).
Idempotent: a second run keeps what is right and replaces what is not, so restarting
Swift on another port moves the endpoints.

Talks to the v3 API only, with the standard library.
"""
import json
import sys
import urllib.error
import urllib.request

URL, ADMIN_USER, ADMIN_PASSWORD, ADMIN_PROJECT, ENDPOINT = sys.argv[1:6]
SERVICE_TYPE = "object-store"
INTERFACES = ("internal", "public")
REGION = "RegionOne"


def call(method, path, token=None, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(URL + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, resp.headers, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return err.code, err.headers, parsed


def check(status, expected, what):
    if status not in expected:
        sys.exit("swift_setup: %s failed with HTTP %s" % (what, status))


def admin_token():
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": ADMIN_USER, "domain": {"id": "default"},
            "password": ADMIN_PASSWORD}}},
        "scope": {"project": {"name": ADMIN_PROJECT, "domain": {"id": "default"}}},
    }}
    status, headers, _ = call("POST", "/auth/tokens", body=body)
    check(status, (201,), "admin login")
    return headers["X-Subject-Token"]


def ensure_service(token):
    status, _, body = call("GET", "/services?type=" + SERVICE_TYPE, token)
    check(status, (200,), "listing services")
    services = body.get("services", [])
    # More than one would make catalog lookups ambiguous: keep the first only.
    for extra in services[1:]:
        status, _, _ = call("DELETE", "/services/" + extra["id"], token)
        check(status, (204, 404), "deleting a duplicate object-store service")
    if services:
        return services[0]["id"]
    status, _, body = call("POST", "/services", token, {"service": {
        "type": SERVICE_TYPE, "name": "swift", "enabled": True}})
    check(status, (201,), "creating the object-store service")
    return body["service"]["id"]


def ensure_endpoints(token, service_id):
    status, _, body = call("GET", "/endpoints?service_id=" + service_id, token)
    check(status, (200,), "listing endpoints")
    kept = set()
    for endpoint in body.get("endpoints", []):
        interface = endpoint.get("interface")
        if (interface in INTERFACES and interface not in kept
                and endpoint.get("url") == ENDPOINT
                and endpoint.get("region_id") == REGION):
            kept.add(interface)
            continue
        status, _, _ = call("DELETE", "/endpoints/" + endpoint["id"], token)
        check(status, (204, 404), "deleting a stale endpoint")
    for interface in INTERFACES:
        if interface in kept:
            continue
        status, _, _ = call("POST", "/endpoints", token, {"endpoint": {
            "service_id": service_id, "interface": interface, "url": ENDPOINT,
            "region_id": REGION, "enabled": True}})
        check(status, (201,), "creating the %s endpoint" % interface)


def main():
    token = admin_token()
    ensure_endpoints(token, ensure_service(token))


main()
