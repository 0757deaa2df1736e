"""KV v2 calls through hvac (a real Vault client, unchanged) against the
server at VAULT_ADDR with VAULT_TOKEN in namespace VAULT_NAMESPACE. Prints one
JSON list: each step's name and either its result or the error hvac raised
(class name and Vault's error list), for the test to compare side by side."""

import json
import os
import sys

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

json.dump(steps, sys.stdout)
