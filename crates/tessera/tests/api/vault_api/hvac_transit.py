"""Transit calls through hvac against the server at VAULT_ADDR (token
VAULT_TOKEN, namespace VAULT_NAMESPACE). Prints one JSON list of steps; each
ciphertext is decrypted back within the run, so the test compares shapes and
round trips (ciphertexts differ by nature)."""

import base64
import json
import os
import sys

import hvac

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

json.dump(steps, sys.stdout)
