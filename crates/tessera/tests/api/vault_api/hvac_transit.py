"""Transit calls through hvac against the server at VAULT_ADDR (token
VAULT_TOKEN, namespace VAULT_NAMESPACE). Prints one JSON list of steps; each
ciphertext is decrypted back within the run, so the test compares shapes and
round trips (ciphertexts differ by nature)."""

import base64
import json
import os
import sys

import hvac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

client = hvac.Client(
    url=os.environ["VAULT_ADDR"],
    token=os.environ["VAULT_TOKEN"],
    namespace=os.environ.get("VAULT_NAMESPACE") or None,
)
transit = client.secrets.transit
steps = []
b64 = lambda s: base64.b64encode(s.encode()).decode()


def step(name, call):
    try:
        result = call()
        if hasattr(result, "status_code"):
            result = {"status": result.status_code}
        steps.append({"step": name, "result": result})
        return result
    except hvac.exceptions.VaultError as e:
        # Error sentences differ between implementations; the kind of refusal does not.
        steps.append({"step": name, "error": type(e).__name__})
        return None


step("create key", lambda: transit.create_key(name="orders"))
step("read key", lambda: transit.read_key(name="orders"))
one = step("encrypt", lambda: transit.encrypt_data(name="orders", plaintext=b64("card 4242-transit-one")))
ct1 = one["data"]["ciphertext"]
step("decrypt", lambda: transit.decrypt_data(name="orders", ciphertext=ct1))
step("rotate", lambda: transit.rotate_key(name="orders"))
two = step("encrypt after rotate", lambda: transit.encrypt_data(name="orders", plaintext=b64("transit-two")))
step("decrypt old version", lambda: transit.decrypt_data(name="orders", ciphertext=ct1))
rewrapped = step("rewrap", lambda: transit.rewrap_data(name="orders", ciphertext=ct1))
step("decrypt rewrapped", lambda: transit.decrypt_data(name="orders", ciphertext=rewrapped["data"]["ciphertext"]))
step("encrypt with version 1", lambda: transit.encrypt_data(name="orders", plaintext=b64("x"), key_version=1))
batch = step(
    "batch encrypt",
    lambda: transit.encrypt_data(
        name="orders",
        batch_input=[{"plaintext": b64("batch-a"), "reference": "a"}, {"plaintext": b64("batch-b")}],
    ),
)
step(
    "batch decrypt",
    lambda: transit.decrypt_data(
        name="orders",
        batch_input=[{"ciphertext": r["ciphertext"], "reference": r.get("reference", "")} for r in batch["data"]["batch_results"]],
    ),
)
step(
    "batch encrypt with a bad item",
    lambda: transit.encrypt_data(name="orders", batch_input=[{"plaintext": b64("fine")}, {"plaintext": "!!"}]),
)
step("batch decrypt with a bad item", lambda: transit.decrypt_data(name="orders", batch_input=[{"ciphertext": "vault:v1:AAAA"}]))
dk = step("datakey plaintext", lambda: transit.generate_data_key(name="orders", key_type="plaintext"))
back = transit.decrypt_data(name="orders", ciphertext=dk["data"]["ciphertext"])
steps.append({"step": "datakey decrypts to its plaintext", "result": back["data"]["plaintext"] == dk["data"]["plaintext"]})
steps.append({"step": "datakey is 32 bytes", "result": len(base64.b64decode(dk["data"]["plaintext"]))})
step("datakey wrapped", lambda: transit.generate_data_key(name="orders", key_type="wrapped"))
step("encrypt creates a key", lambda: transit.encrypt_data(name="fresh", plaintext=b64("transit-three")))
step("read the created key", lambda: transit.read_key(name="fresh"))
step("read a missing key", lambda: transit.read_key(name="missing"))
step("decrypt with a missing key", lambda: transit.decrypt_data(name="missing", ciphertext=ct1))
step("decrypt with another key", lambda: transit.decrypt_data(name="fresh", ciphertext=ct1))
step("decrypt garbage", lambda: transit.decrypt_data(name="orders", ciphertext="vault:v1:AAAA"))


def exact(name, call):
    """A step whose refusal is compared word for word (Vault's sentences, which Tessera keeps)."""
    try:
        result = call()
        if hasattr(result, "status_code"):
            result = {"status": result.status_code}
        steps.append({"step": name, "result": result})
        return result
    except hvac.exceptions.VaultError as e:
        steps.append({"step": name, "error": type(e).__name__, "errors": e.errors})
        return None


# Key configuration, export and deletion.
exact("export before it is exportable", lambda: transit.export_key(name="orders", key_type="encryption-key"))
exact("delete before it is allowed", lambda: transit.delete_key(name="orders"))
exact("configure", lambda: transit.update_key_configuration(name="orders", deletion_allowed=True, exportable=True))
exported = exact("export every version", lambda: transit.export_key(name="orders", key_type="encryption-key"))
exact("export the latest", lambda: transit.export_key(name="orders", key_type="encryption-key", version="latest"))
exact("export version 1", lambda: transit.export_key(name="orders", key_type="encryption-key", version="1"))
exact("export a missing version", lambda: transit.export_key(name="orders", key_type="encryption-key", version="9"))
hmac_keys = exact("export the HMAC keys", lambda: transit.export_key(name="orders", key_type="hmac-key"))
exact("export a signing key", lambda: transit.export_key(name="orders", key_type="signing-key"))
exact("export a missing key", lambda: transit.export_key(name="missing", key_type="encryption-key"))


def opens_with_exported_key():
    """The exported version-1 key opens the first ciphertext: it is the key itself."""
    key = base64.b64decode(exported["data"]["keys"]["1"])
    sealed = base64.b64decode(ct1.split(":", 2)[2])
    opened = AESGCM(key).decrypt(sealed[:12], sealed[12:], None)
    return opened == b"card 4242-transit-one"


steps.append({"step": "the exported key opens the ciphertext", "result": opens_with_exported_key()})
steps.append({"step": "exported keys are 32 bytes", "result": sorted({len(base64.b64decode(k)) for k in exported["data"]["keys"].values()})})
steps.append({"step": "HMAC keys differ from encryption keys", "result": set(hmac_keys["data"]["keys"].values()).isdisjoint(exported["data"]["keys"].values())})
exact("exportable cannot be unset", lambda: transit.update_key_configuration(name="orders", exportable=False))
exact("min decryption version 2", lambda: transit.update_key_configuration(name="orders", min_decryption_version=2))
exact("read after configuring", lambda: transit.read_key(name="orders"))
exact("decrypt below the minimum", lambda: transit.decrypt_data(name="orders", ciphertext=ct1))
exact("rewrap below the minimum", lambda: transit.rewrap_data(name="orders", ciphertext=ct1))
exact("decrypt at the minimum", lambda: transit.decrypt_data(name="orders", ciphertext=two["data"]["ciphertext"]))
exact("export below the minimum", lambda: transit.export_key(name="orders", key_type="encryption-key", version="1"))
exact("min encryption version 2", lambda: transit.update_key_configuration(name="orders", min_encryption_version=2))
exact("encrypt below the minimum", lambda: transit.encrypt_data(name="orders", plaintext=b64("x"), key_version=1))
exact("a minimum beyond the latest", lambda: transit.update_key_configuration(name="orders", min_decryption_version=7))
exact("configure a missing key", lambda: transit.update_key_configuration(name="missing", deletion_allowed=True))
exact("delete", lambda: transit.delete_key(name="orders"))
exact("read the deleted key", lambda: transit.read_key(name="orders"))
exact("delete a missing key", lambda: transit.delete_key(name="orders"))
exact("delete a key that does not allow it", lambda: transit.delete_key(name="fresh"))

json.dump(steps, sys.stdout)
