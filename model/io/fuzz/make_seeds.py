#!/usr/bin/env python3
"""Writes small fuzzing seeds into OUT_DIR (standard library only, no torch):
torch.save-style zip archives (state dicts with shared storages, offsets,
transposed strides and `_metadata`; argparse / SimpleNamespace args) at
pickle protocols 2 and 4, their bare pickles, and small safetensors files.
Fake `torch` modules stand in for the real classes: only the names matter
to the pickle byte stream. The pickle of each ARCHIVE given is extracted
as OUT_DIR/<archive name>.pkl too.
Usage: make_seeds.py OUT_DIR [ARCHIVE.pth ...]"""
import argparse
import collections
import io
import json
import pickle
import struct
import sys
import types
import zipfile

out = sys.argv[1]
torch = types.ModuleType("torch"); utils = types.ModuleType("torch._utils")
sys.modules["torch"] = torch; sys.modules["torch._utils"] = utils
def cls(name):
    c = type(name, (), {}); c.__module__ = "torch"; c.__qualname__ = name
    setattr(torch, name, c); return c
Float, BF16 = cls("FloatStorage"), cls("BFloat16Storage")
def _rebuild_tensor_v2(*a): pass
_rebuild_tensor_v2.__module__ = "torch._utils"; utils._rebuild_tensor_v2 = _rebuild_tensor_v2
class Storage:
    def __init__(s, c, key, n): s.c, s.key, s.n = c, key, n
class T:
    def __init__(s, st, off, size, stride): s.a = (st, off, size, stride)
    def __reduce__(s):
        return (_rebuild_tensor_v2, s.a + (False, collections.OrderedDict()))
class P(pickle.Pickler):
    def persistent_id(s, o):
        return ("storage", o.c, o.key, "cpu", o.n) if isinstance(o, Storage) else None
def archive(name, obj, storages, proto):
    buf = io.BytesIO(); P(buf, protocol=proto).dump(obj)
    with zipfile.ZipFile(f"{out}/{name}.pth", "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{name}/data.pkl", buf.getvalue())
        for key, data in storages.items(): z.writestr(f"{name}/data/{key}", data)
        z.writestr(f"{name}/version", "3\n")
    open(f"{out}/{name}.pkl", "wb").write(buf.getvalue())
for proto in (2, 4):
    s0, s1 = Storage(Float, "0", 12), Storage(BF16, "1", 4)
    sd = collections.OrderedDict()
    sd["_orig_mod.w"] = T(s0, 0, (3, 4), (4, 1))
    sd["_orig_mod.wt"] = T(s0, 0, (4, 3), (1, 4))
    sd["_orig_mod.b"] = T(s0, 8, (4,), (1,))
    sd["h"] = T(s1, 1, (3,), (1,))
    sd._metadata = collections.OrderedDict([("", {"version": 1})])
    archive(f"state_p{proto}", sd, {"0": bytes(range(48)), "1": bytes(8)}, proto)
    ns = argparse.Namespace(model="tiny", patch_sizes=[2, 4], lr=1e-4, qk_norm=True, init_from=None, t=(1, 2))
    archive(f"args_p{proto}", ns, {}, proto)
    archive(f"sns_p{proto}", types.SimpleNamespace(**vars(ns)), {}, proto)


def safetensors(name, tensors, metadata):
    header, data = {"__metadata__": metadata}, b""
    for key, (dtype, shape, raw) in tensors.items():
        header[key] = {"dtype": dtype, "shape": shape,
                       "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode()
    with open(f"{out}/{name}.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


safetensors("small", {"a": ("F32", [2, 3], bytes(24)), "b": ("BF16", [4], bytes(8)),
                      "e": ("I64", [0], b""), "s": ("BOOL", [], b"\x01")},
            {"format": "pt"})
safetensors("f16", {"x": ("F16", [1, 2, 2], bytes(8))}, {})

for path in sys.argv[2:]:
    with zipfile.ZipFile(path) as z:
        pkl = [n for n in z.namelist() if n.endswith("/data.pkl")][0]
        name = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        open(f"{out}/{name}.pkl", "wb").write(z.read(pkl))
