#!/usr/bin/python3
"""lvs-model init-text-encoder: fixed-seed weights in the Hugging Face layout.

Same seed -> same bytes; linear weights from N(0, initializer_range), RMSNorm
weights 0, token embeddings from N(0, --embedding-std) when it is given;
a bad flag value exits 2.
Usage: init_text_encoder_test.py SOURCE_DIR BINARY_DIR
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

src, binary = sys.argv[1], sys.argv[2]
lvs_model = os.path.join(binary, "tools/lvs_model/lvs-model")
config = os.path.join(src, "models/demo/recipe/text_encoder_config.json")
tokenizer = os.path.join(src, "tests/golden/text_encoder/tokenizer.model")


def init(out, *extra):
    subprocess.run([lvs_model, "init-text-encoder", "--config", config,
                    "--tokenizer", tokenizer, "--seed", "3", "--out", out,
                    *extra], check=True, capture_output=True)
    with open(os.path.join(out, "model.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    tensors = {}
    for k, e in header.items():
        if k == "__metadata__":
            continue
        assert e["dtype"] == "F32", (k, e["dtype"])
        a, b = e["data_offsets"]
        tensors[k] = np.frombuffer(data[a:b], np.float32).reshape(e["shape"])
    return tensors


failures = []
with tempfile.TemporaryDirectory() as tmp:
    plain = init(os.path.join(tmp, "a"))
    again = init(os.path.join(tmp, "b"))
    wide = init(os.path.join(tmp, "c"), "--embedding-std", "1.0")
    for k in plain:
        if not np.array_equal(plain[k], again[k]):
            failures.append(f"{k}: differs between two runs with one seed")
    rng = json.load(open(config))["initializer_range"]
    for k, t in plain.items():
        if k.endswith("norm.weight"):
            if np.abs(t).max() != 0:
                failures.append(f"{k}: norm weight not 0")
        elif t.size >= 1000 and abs(t.std() / rng - 1) > 0.1:
            failures.append(f"{k}: std {t.std():.4f}, want {rng}")
    emb = "model.embed_tokens.weight"
    if abs(wide[emb].std() - 1.0) > 0.05:
        failures.append(f"--embedding-std 1.0: embedding std {wide[emb].std()}")
    for k in plain:
        if k != emb and not np.array_equal(plain[k], wide[k]):
            failures.append(f"--embedding-std changed {k}")
    bad = subprocess.run([lvs_model, "init-text-encoder", "--config", config,
                          "--tokenizer", tokenizer, "--out", tmp + "/d",
                          "--embedding-std", "wide"], capture_output=True)
    if bad.returncode == 0:
        failures.append("--embedding-std wide was accepted")
for f in failures:
    print("FAIL", f)
print("init_text_encoder_test:", "FAILED" if failures else "passed")
sys.exit(1 if failures else 0)
