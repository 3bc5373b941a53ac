#!/usr/bin/python3
"""The /v1/videos API of lvs-gateway end to end against real lvs-server,
lvs-worker (fake model) and lvs-gateway processes: every endpoint, errors,
API keys, idempotency, Range requests, Server-Sent Events and their resume,
CORS, and one job seen from both HTTP and gRPC."""
import json
import os
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stack import Stack  # noqa: E402

sys.path.insert(0, os.environ["LVS_PYTHON_STUBS_DIR"])
import grpc  # noqa: E402
from lumina.video.v1 import common_pb2, video_service_pb2, video_service_pb2_grpc  # noqa: E402

SMALL = {"prompt": "a lighthouse in fog", "size": "64x96", "frames": 17, "fps": 8, "steps": 4, "seed": 7}


def sse_events(stack, vid, last_event_id=None, headers=None, timeout=60):
    """Reads the whole event stream: list of (id or None, event, data dict)."""
    h = dict(headers or {})
    if last_event_id is not None:
        h["Last-Event-ID"] = str(last_event_id)
    status, rh, body = stack.request("GET", f"/v1/videos/{vid}/events", headers=h, timeout=timeout)
    assert status == 200, (status, body)
    assert rh["content-type"].startswith("text/event-stream"), rh
    out = []
    for block in body.decode().split("\n\n"):
        fields = {}
        for line in block.split("\n"):
            if ": " in line:
                k, v = line.split(": ", 1)
                fields[k] = v
        if "event" in fields:
            out.append((int(fields["id"]) if "id" in fields else None, fields["event"],
                        json.loads(fields["data"])))
    return out


def multipart(fields):
    boundary = "lvs" + uuid.uuid4().hex
    parts = []
    for k, v in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n')
    parts.append(f"--{boundary}--\r\n")
    return "".join(parts).encode(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


class GatewayApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(worker_flags=["--fake-step-ms=30", "--fake-decode-ms=150"],
                          gateway_flags=["--max-body-bytes=65536"]).__enter__()
        channel = grpc.insecure_channel(f"127.0.0.1:{cls.stack.grpc_port}")
        cls.grpc = video_service_pb2_grpc.VideoServiceStub(channel)

    @classmethod
    def tearDownClass(cls):
        cls.stack.__exit__(None, None, None)

    def create(self, body=None, headers=None):
        status, v = self.stack.json("POST", "/v1/videos", body or SMALL, headers)
        self.assertEqual(status, 200, v)
        return v

    def test_create_get_content_and_range(self):
        v = self.create()
        self.assertEqual(v["object"], "video")
        self.assertIn(v["status"], ("queued", "in_progress"))
        self.assertEqual(v["size"], "64x96")
        self.assertEqual(v["seconds"], "2.125")
        self.assertIsInstance(v["created_at"], int)
        for k in ("id", "progress", "model", "error"):
            self.assertIn(k, v)
        done = self.stack.wait_status(v["id"], {"completed"})
        self.assertEqual(done["progress"], 100)
        self.assertEqual(done["size"], "64x96")
        total = done["lvs"]["size_bytes"]
        status, h, mp4 = self.stack.request("GET", f"/v1/videos/{v['id']}/content")
        self.assertEqual(status, 200)
        self.assertEqual(h["content-type"], "video/mp4")
        self.assertEqual(h["accept-ranges"], "bytes")
        self.assertEqual(len(mp4), total)
        self.assertEqual(mp4[4:8], b"ftyp")
        status, h, part = self.stack.request("GET", f"/v1/videos/{v['id']}/content",
                                             headers={"Range": "bytes=100-1099"})
        self.assertEqual(status, 206)
        self.assertEqual(h["content-range"], f"bytes 100-1099/{total}")
        self.assertEqual(part, mp4[100:1100])
        status, h, tail = self.stack.request("GET", f"/v1/videos/{v['id']}/content",
                                             headers={"Range": "bytes=-500"})
        self.assertEqual((status, tail), (206, mp4[-500:]))
        status, h, _ = self.stack.request("GET", f"/v1/videos/{v['id']}/content",
                                          headers={"Range": f"bytes={total + 10}-"})
        self.assertEqual(status, 416)
        status, h, follow = self.stack.request("GET", f"/v1/videos/{v['id']}/content?follow=true")
        self.assertEqual((status, follow), (200, mp4))
        status, err = self.stack.json("GET", f"/v1/videos/{v['id']}/content?variant=thumbnail")
        self.assertEqual((status, err["error"]["param"]), (400, "variant"))

    def test_multipart_create_and_seconds(self):
        body, headers = multipart({"prompt": "a paper boat", "size": "64x96", "seconds": "1",
                                   "fps": "8", "steps": "3"})
        status, v = self.stack.json("POST", "/v1/videos", body, headers)
        self.assertEqual(status, 200, v)
        self.assertEqual(v["seconds"], "1")
        done = self.stack.wait_status(v["id"], {"completed"})
        self.assertEqual(done["lvs"]["frames"] in (8, 9, 5), True, done)
        body, headers = multipart({"prompt": "x", "size": "64x96", "input_reference": "img"})
        status, err = self.stack.json("POST", "/v1/videos", body, headers)
        self.assertEqual((status, err["error"]["param"]), (400, "input_reference"))

    def test_errors(self):
        cases = [
            ({"prompt": "x", "size": "64by96"}, 400, "size"),
            ({"prompt": "x", "size": "65x96", "frames": 9}, 400, "width"),
            ({"prompt": "x", "size": "64x96", "frames": 100000}, 400, "frames"),
            ({"prompt": "x", "colour": "blue"}, 400, "colour"),
            ({"prompt": "x", "seed": "abc"}, 400, "seed"),
            ({"prompt": "", "size": "64x96"}, 400, "prompt"),
        ]
        for body, code, param in cases:
            status, err = self.stack.json("POST", "/v1/videos", body)
            self.assertEqual(status, code, (body, err))
            self.assertEqual(err["error"]["param"], param, (body, err))
            self.assertEqual(err["error"]["type"], "invalid_request_error")
            self.assertTrue(err["error"]["message"])
        status, _, data = self.stack.request("POST", "/v1/videos", b"{not json",
                                             {"Content-Type": "application/json"})
        self.assertEqual(status, 400)
        self.assertEqual(json.loads(data)["error"]["code"], "invalid_json")
        status, err = self.stack.json("GET", "/v1/videos/0123456789abcdef")
        self.assertEqual((status, err["error"]["type"]), (404, "invalid_request_error"))
        status, err = self.stack.json("GET", "/v1/nothing")
        self.assertEqual(status, 404)
        self.assertIn("no route", err["error"]["message"])
        big = {"prompt": "x" * 70000}
        status, _, data = self.stack.request("POST", "/v1/videos", big)
        self.assertEqual(status, 413)
        self.assertIn("too large", json.loads(data)["error"]["message"])
        for q in ("limit=0", "limit=abc", "order=up", "after=nosuchid"):
            status, err = self.stack.json("GET", f"/v1/videos?{q}")
            self.assertEqual(status, 400, (q, err))
        status, _, data = self.stack.request("POST", "/v1/videos", b"prompt=x",
                                             {"Content-Type": "text/plain"})
        self.assertEqual(status, 415)

    def test_idempotency_key(self):
        key = str(uuid.uuid4())
        a = self.create(headers={"Idempotency-Key": key})
        b = self.create(headers={"Idempotency-Key": key})
        self.assertEqual(a["id"], b["id"])
        self.assertEqual(b["lvs"]["request_id"], key)
        c = self.create(headers={"Idempotency-Key": str(uuid.uuid4())})
        self.assertNotEqual(a["id"], c["id"])

    def test_list_pages_and_order(self):
        ids = [self.create()["id"] for _ in range(3)]
        status, page = self.stack.json("GET", "/v1/videos?limit=2")
        self.assertEqual(status, 200)
        self.assertEqual(page["object"], "list")
        self.assertEqual([v["id"] for v in page["data"]], ids[::-1][:2])
        self.assertTrue(page["has_more"])
        self.assertEqual(page["last_id"], ids[1])
        status, nxt = self.stack.json("GET", f"/v1/videos?limit=1&after={page['last_id']}")
        self.assertEqual(nxt["data"][0]["id"], ids[0])
        status, asc = self.stack.json("GET", "/v1/videos?order=asc&limit=100")
        got = [v["id"] for v in asc["data"]]
        self.assertEqual([i for i in got if i in ids], ids)

    def test_cancel_delete_and_events_of_a_cancelled_job(self):
        v = self.create({"prompt": "a long one", "size": "64x96", "frames": 9, "steps": 200})
        self.stack.wait_status(v["id"], {"in_progress"})
        status, err = self.stack.json("DELETE", f"/v1/videos/{v['id']}")
        self.assertEqual((status, err["error"]["type"]), (409, "invalid_request_error"))
        status, c = self.stack.json("POST", f"/v1/videos/{v['id']}/cancel")
        self.assertEqual(status, 200, c)
        self.assertEqual(c["status"], "cancelled")
        self.assertEqual(c["error"]["code"], "cancelled")
        events = sse_events(self.stack, v["id"])
        self.assertEqual(events[-1][1], "cancelled", events[-3:])
        status, err = self.stack.json("POST", f"/v1/videos/{v['id']}/cancel")
        self.assertEqual(status, 409)
        status, d = self.stack.json("DELETE", f"/v1/videos/{v['id']}")
        self.assertEqual((status, d), (200, {"id": v["id"], "object": "video.deleted", "deleted": True}))
        status, _ = self.stack.json("GET", f"/v1/videos/{v['id']}")
        self.assertEqual(status, 404)

    def test_events_and_resume(self):
        v = self.create(dict(SMALL, steps=8))
        events = sse_events(self.stack, v["id"])
        kinds = [e[1] for e in events]
        for k in ("queued", "started", "step", "decoded", "completed"):
            self.assertIn(k, kinds)
        self.assertEqual(kinds[-1], "completed")
        self.assertLess(kinds.index("started"), kinds.index("step"))
        self.assertLess(kinds.index("step"), kinds.index("decoded"))
        steps = [e[2] for e in events if e[1] == "step"]
        self.assertEqual([s["index"] for s in steps], list(range(7)))
        self.assertTrue(all(s["total"] == 7 and "eta_seconds" in s for s in steps))
        ids = [e[0] for e in events]
        self.assertEqual(ids, sorted(ids))
        middle = steps[3]["sequence"]
        resumed = sse_events(self.stack, v["id"], last_event_id=middle)
        self.assertEqual([e[0] for e in resumed], [i for i in ids if i > middle])
        self.assertEqual(resumed[-1][1], "completed")
        status, h, body = self.stack.request("GET", f"/v1/videos/{v['id']}/events",
                                             headers={"Last-Event-ID": "x"})
        self.assertEqual(status, 400)

    def test_content_while_running(self):
        v = self.create({"prompt": "a slow sunrise", "size": "64x96", "frames": 96, "fps": 8,
                         "steps": 2})
        end = time.time() + 60
        while time.time() < end:
            _, cur = self.stack.json("GET", f"/v1/videos/{v['id']}")
            if cur["status"] == "in_progress" and cur["lvs"]["bytes"] > 0:
                break
            self.assertNotEqual(cur["status"], "completed", "finished before a partial read")
            time.sleep(0.05)
        status, h, part = self.stack.request("GET", f"/v1/videos/{v['id']}/content")
        self.assertEqual(status, 200)
        self.assertGreaterEqual(len(part), cur["lvs"]["bytes"])
        self.assertEqual(part[4:8], b"ftyp")
        status, h, live = self.stack.request("GET", f"/v1/videos/{v['id']}/content?follow=true")
        self.assertEqual(status, 200)
        done = self.stack.wait_status(v["id"], {"completed"})
        _, _, full = self.stack.request("GET", f"/v1/videos/{v['id']}/content")
        self.assertEqual(live, full)
        self.assertEqual(len(full), done["lvs"]["size_bytes"])
        self.assertEqual(full[:len(part)], part)
        self.assertLess(len(part), len(full))

    def test_http_and_grpc_see_the_same_jobs(self):
        v = self.create()
        job = self.grpc.GetVideoJob(video_service_pb2.GetVideoJobRequest(name=f"jobs/{v['id']}"))
        self.assertEqual(job.request.prompt, SMALL["prompt"])
        self.assertEqual((job.request.width, job.request.height), (64, 96))
        req = common_pb2.GenerateVideoRequest(prompt="made over grpc", width=64, height=96,
                                              frames=9, fps=8, steps=3)
        made = self.grpc.CreateVideoJob(video_service_pb2.CreateVideoJobRequest(video=req))
        vid = made.name.split("/")[1]
        status, got = self.stack.json("GET", f"/v1/videos/{vid}")
        self.assertEqual((status, got["prompt"]), (200, "made over grpc"))
        self.stack.wait_status(vid, {"completed"})
        status, page = self.stack.json("GET", "/v1/videos?limit=100")
        self.assertIn(vid, [x["id"] for x in page["data"]])

    def test_page(self):
        status, h, body = self.stack.request("GET", "/")
        self.assertEqual(status, 200)
        self.assertTrue(h["content-type"].startswith("text/html"))
        self.assertIn(b"<video", body)
        self.assertNotIn(b"https://", body)  # nothing from the network
        self.assertNotIn("access-control-allow-origin", h)


class GatewayStreamLimitTest(unittest.TestCase):
    def test_stream_slots_and_stop(self):
        import http.client
        import signal
        with Stack(worker_flags=["--fake-step-ms=50"],
                   gateway_flags=["--threads=4", "--max-streams=2"]) as s:
            long = dict(SMALL, steps=200)
            ids = [s.json("POST", "/v1/videos", long)[1]["id"] for _ in range(3)]
            conns = []
            for vid in ids[:2]:
                c = http.client.HTTPConnection("127.0.0.1", s.http_port, timeout=10)
                c.request("GET", f"/v1/videos/{vid}/events")
                r = c.getresponse()
                self.assertEqual(r.status, 200)
                r.fp.readline()  # "retry: ..."
                conns.append((c, r))
            status, h, body = s.request("GET", f"/v1/videos/{ids[2]}/events")
            self.assertEqual(status, 503)
            self.assertEqual(h["retry-after"], "1")
            self.assertEqual(json.loads(body)["error"]["code"], "too_many_streams")
            # Short calls still have threads.
            self.assertEqual(s.json("GET", f"/v1/videos/{ids[0]}")[0], 200)
            # A client that leaves frees its slot at the next event (the
            # running job steps every 50 ms).
            conns[0][1].close()
            conns[0][0].close()
            end = time.time() + 10
            while time.time() < end:
                c = http.client.HTTPConnection("127.0.0.1", s.http_port, timeout=10)
                c.request("GET", f"/v1/videos/{ids[2]}/events")
                r = c.getresponse()
                if r.status == 200:
                    conns.append((c, r))
                    break
                r.read()
                c.close()
                time.sleep(0.2)
            else:
                self.fail("the slot of a closed stream was not freed")
            # SIGTERM ends open streams and the process promptly.
            gateway = s.procs[-1]
            start = time.time()
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(timeout=10)
            self.assertLess(time.time() - start, 5)
            self.assertEqual(gateway.returncode, 0)
            for c, _ in conns:
                c.close()


class GatewayAuthCorsTest(unittest.TestCase):
    def test_keys_and_cors(self):
        tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"lvs-keys-{os.getpid()}.txt")
        with open(tmp, "w") as f:
            f.write("key-alice\nkey-bob:1:2\n")
        try:
            with Stack(server_flags=[f"--api-keys-file={tmp}"],
                       worker_flags=["--fake-step-ms=20"],
                       gateway_flags=["--cors-origin=http://app.example"]) as s:
                alice = {"Authorization": "Bearer key-alice"}
                bob = {"Authorization": "Bearer key-bob"}
                status, err = s.json("POST", "/v1/videos", SMALL)
                self.assertEqual((status, err["error"]["type"]), (401, "authentication_error"))
                status, err = s.json("GET", "/v1/videos", headers={"Authorization": "Bearer nope"})
                self.assertEqual(status, 401)
                status, err = s.json("GET", "/v1/videos", headers={"Authorization": "Basic abc"})
                self.assertEqual((status, err["error"]["code"]), (401, "invalid_authorization"))
                status, v = s.json("POST", "/v1/videos", SMALL, alice)
                self.assertEqual(status, 200, v)
                status, _ = s.json("GET", f"/v1/videos/{v['id']}", headers=bob)
                self.assertEqual(status, 404)
                status, page = s.json("GET", "/v1/videos", headers=bob)
                self.assertEqual(page["data"], [])
                s.wait_status(v["id"], {"completed"}, headers=alice)
                status, _, _ = s.request("GET", f"/v1/videos/{v['id']}/content", headers=bob)
                self.assertEqual(status, 404)
                status, _, mp4 = s.request("GET", f"/v1/videos/{v['id']}/content", headers=alice)
                self.assertEqual((status, mp4[4:8]), (200, b"ftyp"))
                # key-bob may queue 2 jobs: the third is refused with 429 + Retry-After.
                long = dict(SMALL, steps=200)
                codes = [s.request("POST", "/v1/videos", long, bob)[0] for _ in range(4)]
                self.assertIn(429, codes)
                status, h, body = s.request("POST", "/v1/videos", long, bob)
                self.assertEqual(json.loads(body)["error"]["type"], "rate_limit_error")
                # gRPC with the same key sees the job made over HTTP.
                ch = grpc.insecure_channel(f"127.0.0.1:{s.grpc_port}")
                stub = video_service_pb2_grpc.VideoServiceStub(ch)
                job = stub.GetVideoJob(video_service_pb2.GetVideoJobRequest(name=f"jobs/{v['id']}"),
                                       metadata=[("authorization", "Bearer key-alice")])
                self.assertEqual(job.state, common_pb2.SUCCEEDED)
                # CORS: only the configured origin.
                origin = {"Origin": "http://app.example"}
                status, h, _ = s.request("GET", "/v1/videos", headers=dict(alice, **origin))
                self.assertEqual(h.get("access-control-allow-origin"), "http://app.example")
                status, h, _ = s.request("OPTIONS", "/v1/videos", headers=dict(
                    origin, **{"Access-Control-Request-Method": "POST"}))
                self.assertEqual(status, 204)
                self.assertIn("Authorization", h["access-control-allow-headers"])
                status, h, _ = s.request("GET", "/v1/videos", headers=dict(
                    alice, Origin="http://evil.example"))
                self.assertNotIn("access-control-allow-origin", h)
        finally:
            os.unlink(tmp)


if __name__ == "__main__":
    unittest.main(verbosity=2)
