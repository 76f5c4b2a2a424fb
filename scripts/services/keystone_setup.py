"""Create the test identities in a freshly bootstrapped Keystone.

Usage: keystone_setup.py URL ADMIN_PASSWORD SERVICE_PASSWORD MEMBER_PASSWORD

Talks to the v3 API only (standard library, no client packages), and is
idempotent: anything that already exists is reused, so a second run against
the same Keystone succeeds.
"""
import json
import sys
import urllib.error
import urllib.request

URL, ADMIN_PASSWORD, SERVICE_PASSWORD, MEMBER_PASSWORD = sys.argv[1:5]


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


def admin_token():
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"},
            "password": ADMIN_PASSWORD}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
    }}
    status, headers, _ = call("POST", "/auth/tokens", body=body)
    if status != 201:
        sys.exit("keystone_setup: admin login failed with HTTP %s" % status)
    return headers["X-Subject-Token"]


def find(token, collection, name):
    status, _, body = call("GET", "/%s?name=%s" % (collection, name), token)
    if status != 200:
        sys.exit("keystone_setup: listing %s failed with HTTP %s"
                 % (collection, status))
    items = body.get(collection, [])
    return items[0]["id"] if items else None


def ensure(token, collection, name, extra):
    found = find(token, collection, name)
    if found:
        return found
    singular = collection[:-1]
    obj = {"name": name}
    obj.update(extra)
    status, _, body = call("POST", "/" + collection, token, {singular: obj})
    if status not in (200, 201):
        sys.exit("keystone_setup: creating %s %s failed with HTTP %s"
                 % (singular, name, status))
    return body[singular]["id"]


def ensure_user(token, name, password, project_id):
    user_id = ensure(token, "users", name, {
        "domain_id": "default", "password": password,
        "default_project_id": project_id, "enabled": True})
    return user_id


def grant(token, project_id, user_id, role_id):
    status, _, _ = call(
        "PUT", "/projects/%s/users/%s/roles/%s" % (project_id, user_id, role_id),
        token)
    if status not in (200, 204):
        sys.exit("keystone_setup: role assignment failed with HTTP %s" % status)


def main():
    token = admin_token()
    service = ensure(token, "projects", "service", {"domain_id": "default"})
    admin_role = ensure(token, "roles", "admin", {})
    member_role = ensure(token, "roles", "member", {})
    inspector = ensure_user(token, "inspector", SERVICE_PASSWORD, service)
    grant(token, service, inspector, admin_role)
    member = ensure_user(token, "member-user", MEMBER_PASSWORD, service)
    grant(token, service, member, member_role)


main()
