"""KV v2 calls through hvac (a real Vault client, unchanged) against the
server at VAULT_ADDR with VAULT_TOKEN in namespace VAULT_NAMESPACE. Prints one
JSON list: each step's name and either its result or the error hvac raised
(class name and Vault's error list), for the test to compare side by side."""

import json
import os
import sys
import time

import hvac

client = hvac.Client(
    url=os.environ["VAULT_ADDR"],
    token=os.environ["VAULT_TOKEN"],
    namespace=os.environ.get("VAULT_NAMESPACE") or None,
)
kv = client.secrets.kv.v2
steps = []


def step(name, call):
    try:
        result = call()
        if hasattr(result, "status_code"):  # a bare requests.Response (204)
            result = {"status": result.status_code}
        steps.append({"step": name, "result": result})
    except hvac.exceptions.VaultError as e:
        steps.append({"step": name, "error": type(e).__name__, "errors": e.errors})


step("authenticated", lambda: client.is_authenticated())
step("write v1", lambda: kv.create_or_update_secret(path="svc/db", secret={"user": "app", "password": "hvac-pw-one"}))
step("write v2 with cas", lambda: kv.create_or_update_secret(path="svc/db", secret={"user": "app", "password": "hvac-pw-two"}, cas=1))
step("write with a stale cas", lambda: kv.create_or_update_secret(path="svc/db", secret={"user": "x"}, cas=1))
step("write only if new, existing", lambda: kv.create_or_update_secret(path="svc/db", secret={"user": "x"}, cas=0))
step("write only if new", lambda: kv.create_or_update_secret(path="svc/api", secret={"token": "hvac-token-three"}, cas=0))
step("read newest", lambda: kv.read_secret_version(path="svc/db", raise_on_deleted_version=True))
step("read version 1", lambda: kv.read_secret_version(path="svc/db", version=1, raise_on_deleted_version=True))
step("read a missing version", lambda: kv.read_secret_version(path="svc/db", version=9, raise_on_deleted_version=True))
step("read a missing secret", lambda: kv.read_secret_version(path="svc/none", raise_on_deleted_version=True))
step("patch", lambda: kv.patch(path="svc/db", secret={"password": "hvac-pw-four", "port": "5432"}))
step("read patched", lambda: kv.read_secret_version(path="svc/db", raise_on_deleted_version=True))
step("list root", lambda: kv.list_secrets(path=""))
step("list folder", lambda: kv.list_secrets(path="svc"))
step("list a missing folder", lambda: kv.list_secrets(path="nothing"))
step("custom metadata", lambda: kv.update_metadata(path="svc/db", custom_metadata={"owner": "billing"}))
step("metadata", lambda: kv.read_secret_metadata(path="svc/db"))
step("delete newest", lambda: kv.delete_latest_version_of_secret(path="svc/db"))
step("read deleted", lambda: kv.read_secret_version(path="svc/db", raise_on_deleted_version=False))
step("undelete", lambda: kv.undelete_secret_versions(path="svc/db", versions=[3]))
step("read undeleted", lambda: kv.read_secret_version(path="svc/db", raise_on_deleted_version=True))
step("delete versions", lambda: kv.delete_secret_versions(path="svc/db", versions=[1, 2]))
step("destroy", lambda: kv.destroy_secret_versions(path="svc/db", versions=[1]))
step("read destroyed", lambda: kv.read_secret_version(path="svc/db", version=1, raise_on_deleted_version=False))
step("metadata after", lambda: kv.read_secret_metadata(path="svc/db"))
step("delete metadata", lambda: kv.delete_metadata_and_all_versions(path="svc/api"))
step("read removed", lambda: kv.read_secret_version(path="svc/api", raise_on_deleted_version=True))
step("metadata before any data", lambda: kv.update_metadata(path="svc/later", custom_metadata={"managed-by": "external-secrets"}))
step("metadata of a path with no version", lambda: kv.read_secret_metadata(path="svc/later"))
step("read a path with no version", lambda: kv.read_secret_version(path="svc/later", raise_on_deleted_version=True))
step("first write after metadata", lambda: kv.create_or_update_secret(path="svc/later", secret={"k": "v"}, cas=0))
step("read it", lambda: kv.read_secret_version(path="svc/later", raise_on_deleted_version=True))
step("list after", lambda: kv.list_secrets(path="svc"))


def raw_get(path):
    """A GET whose answer is kept whatever its status (hvac raises on a 404 with a body)."""
    r = client.adapter.get(f"/v1/{path}", raise_exception=False)
    if isinstance(r, dict):
        return {"status": 200, "body": r}
    return {"status": r.status_code, "body": r.json() if r.content else None}


# Per-secret settings: max_versions prunes, cas_required refuses blind writes.
step("settings", lambda: kv.update_metadata(path="set/x", max_versions=2, cas_required=True, delete_version_after="3h"))
step("settings shown", lambda: kv.read_secret_metadata(path="set/x"))
step("write without cas", lambda: kv.create_or_update_secret(path="set/x", secret={"k": "hvac-set-one"}))
step("write with cas 0", lambda: kv.create_or_update_secret(path="set/x", secret={"k": "hvac-set-one"}, cas=0))
step("write with cas 1", lambda: kv.create_or_update_secret(path="set/x", secret={"k": "hvac-set-two", "db": {"host": "h", "tls": {"ca": "c"}}}, cas=1))
step("write with cas 2", lambda: kv.create_or_update_secret(path="set/x", secret={"k": "hvac-set-three", "db": {"host": "h"}}, cas=2))
step("patch without cas", lambda: kv.patch(path="set/x", secret={"k": "x"}))
step("metadata after pruning", lambda: kv.read_secret_metadata(path="set/x"))
step("read a pruned version", lambda: kv.read_secret_version(path="set/x", version=1, raise_on_deleted_version=True))
step("read a kept version", lambda: kv.read_secret_version(path="set/x", version=2, raise_on_deleted_version=True))
step("subkeys", lambda: raw_get("secret/subkeys/set/x"))
step("subkeys of version 2 to depth 2", lambda: raw_get("secret/subkeys/set/x?version=2&depth=2"))
step("subkeys to depth 1", lambda: raw_get("secret/subkeys/set/x?depth=1"))
step("subkeys of a pruned version", lambda: raw_get("secret/subkeys/set/x?version=1"))
step("subkeys of a missing secret", lambda: raw_get("secret/subkeys/set/none"))
step("subkeys with a bad depth", lambda: raw_get("secret/subkeys/set/x?depth=deep"))
step("settings cleared", lambda: kv.update_metadata(path="set/x", max_versions=0, cas_required=False))
step("write after clearing", lambda: kv.create_or_update_secret(path="set/x", secret={"k": "hvac-set-four"}))
step("bad settings", lambda: kv.update_metadata(path="set/x", delete_version_after="soon"))
# delete_version_after: each new version gets a deletion time and reads as deleted after it.
step("short-lived", lambda: kv.update_metadata(path="set/short", delete_version_after="1s"))
step("write short-lived", lambda: kv.create_or_update_secret(path="set/short", secret={"k": "hvac-short-five"}))
step("read before it expires", lambda: kv.read_secret_version(path="set/short", raise_on_deleted_version=True))
time.sleep(1.5)
step("read after it expired", lambda: raw_get("secret/data/set/short"))
step("subkeys after it expired", lambda: raw_get("secret/subkeys/set/short"))
step("undelete it", lambda: kv.undelete_secret_versions(path="set/short", versions=[1]))
step("metadata of the short-lived", lambda: kv.read_secret_metadata(path="set/short"))
# The mount's settings, and how they combine with a secret's.
step("mount config", lambda: kv.read_configuration())
step("configure the mount", lambda: kv.configure(max_versions=3, cas_required=True, delete_version_after="2h"))
step("mount config after", lambda: kv.read_configuration())
step("write without cas on the mount", lambda: kv.create_or_update_secret(path="set/mount", secret={"k": "v"}))
step("turning cas off where the mount requires it", lambda: kv.update_metadata(path="set/mount", cas_required=False, max_versions=2))
for n in range(4):
    step(f"mount write {n}", lambda n=n: kv.create_or_update_secret(path="set/mount", secret={"k": f"v{n}"}, cas=n))
step("the larger max_versions holds", lambda: kv.read_secret_metadata(path="set/mount"))
step("reset the mount", lambda: kv.configure(max_versions=0, cas_required=False, delete_version_after="0s"))
step("mount config reset", lambda: kv.read_configuration())

json.dump(steps, sys.stdout)
