#!/usr/bin/python3
"""Example Python client of the lvs video service.

Stubs are generated from proto/ with Debian's grpc_tools (python3-grpc-tools)
at build time (CMake target `lvs_python_stubs`, into
<build>/client/python/gen) or on the fly into a temporary directory when
--stubs is not given. Run with /usr/bin/python3 (python3-grpcio).

  /usr/bin/python3 client/python/lvs_client.py --server 127.0.0.1:50051 \
      generate "a red fox in the snow" -o fox.mp4 --resolution 256x160 \
      --frames 17 --fps 8 --steps 20
  /usr/bin/python3 client/python/lvs_client.py jobs
"""

import argparse
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_stubs(stubs_dir):
    """Imports the generated modules, generating them first if needed."""
    if not stubs_dir:
        stubs_dir = tempfile.mkdtemp(prefix="lvs-stubs-")
        generate_stubs(os.path.join(REPO, "proto"), stubs_dir)
    sys.path.insert(0, stubs_dir)
    global common_pb2, video_service_pb2, video_service_pb2_grpc
    global status_pb2, error_details_pb2
    from lumina.video.v1 import common_pb2, video_service_pb2, video_service_pb2_grpc
    from google.rpc import status_pb2, error_details_pb2


def generate_stubs(proto_dir, out_dir):
    """Runs grpc_tools.protoc on every .proto under proto_dir."""
    import grpc_tools

    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    protos = []
    for root, _, files in os.walk(proto_dir):
        protos += [os.path.relpath(os.path.join(root, f), proto_dir)
                   for f in files if f.endswith(".proto")]
    os.makedirs(out_dir, exist_ok=True)
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I" + proto_dir,
                    "-I" + well_known, "--python_out=" + out_dir,
                    "--grpc_python_out=" + out_dir] + sorted(protos), check=True)


def describe(error):
    """Returns an RpcError as text, with its google.rpc details."""
    text = "%s: %s" % (error.code().name, error.details())
    for key, value in error.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        status = status_pb2.Status.FromString(value)
        for any_detail in status.details:
            bad = error_details_pb2.BadRequest()
            quota = error_details_pb2.QuotaFailure()
            retry = error_details_pb2.RetryInfo()
            if any_detail.Unpack(bad):
                for v in bad.field_violations:
                    text += "\n  bad field %s: %s" % (v.field, v.description)
            elif any_detail.Unpack(quota):
                for v in quota.violations:
                    text += "\n  quota %s: %s" % (v.subject, v.description)
            elif any_detail.Unpack(retry):
                text += "\n  retry after %.1f s" % (
                    retry.retry_delay.seconds + retry.retry_delay.nanos * 1e-9)
    return text


def open_stub(args):
    import grpc

    if args.tls_ca:
        with open(args.tls_ca, "rb") as f:
            channel = grpc.secure_channel(args.server, grpc.ssl_channel_credentials(f.read()))
    else:
        channel = grpc.insecure_channel(args.server)
    metadata = [("authorization", "Bearer " + args.api_key)] if args.api_key else []
    return video_service_pb2_grpc.VideoServiceStub(channel), metadata


def cmd_generate(args):
    """Streams GenerateVideo, writing the MP4 as its chunks arrive."""
    import grpc

    stub, metadata = open_stub(args)
    width, height = (int(x) for x in args.resolution.split("x"))
    request = common_pb2.GenerateVideoRequest(
        prompt=args.prompt, negative_prompt=args.negative, width=width,
        height=height, frames=args.frames, fps=args.fps, steps=args.steps,
        seed=args.seed)
    part = args.output + ".part"
    done = None
    try:
        with open(part, "wb") as out:
            for event in stub.GenerateVideo(request, metadata=metadata,
                                            timeout=args.timeout):
                kind = event.WhichOneof("event")
                if kind == "queued":
                    print("queued: position %d" % event.queued.position, file=sys.stderr)
                elif kind == "started":
                    print("started on %s" % event.started.worker, file=sys.stderr)
                elif kind == "step":
                    s = event.step
                    print("\rstep %d/%d %.2f it/s" % (s.index + 1, s.total, s.it_per_s),
                          end="", file=sys.stderr)
                elif kind == "chunk":
                    if event.chunk.offset != out.tell():
                        raise RuntimeError("chunk at %d, expected %d" %
                                           (event.chunk.offset, out.tell()))
                    out.write(event.chunk.data)
                elif kind == "requeued":
                    out.seek(0)
                    out.truncate()
                elif kind == "completed":
                    done = event.completed
    except grpc.RpcError as e:
        print("\nlvs_client: " + describe(e), file=sys.stderr)
        return 1
    print("", file=sys.stderr)
    if done is None or os.path.getsize(part) != done.size_bytes:
        print("lvs_client: the stream ended without the whole video", file=sys.stderr)
        return 1
    os.replace(part, args.output)
    print("%s: %d frames %dx%d @ %d fps, %d bytes, job %s" % (
        args.output, done.frames, done.width, done.height, done.fps,
        done.size_bytes, event.job))
    return 0


def cmd_jobs(args):
    """Lists the caller's jobs."""
    import grpc

    stub, metadata = open_stub(args)
    request = video_service_pb2.ListVideoJobsRequest(page_size=args.page_size)
    try:
        response = stub.ListVideoJobs(request, metadata=metadata, timeout=30)
    except grpc.RpcError as e:
        print("lvs_client: " + describe(e), file=sys.stderr)
        return 1
    for job in response.jobs:
        print("%s %s %s" % (job.name, common_pb2.JobState.Name(job.state),
                            job.request.prompt))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default="127.0.0.1:50051")
    parser.add_argument("--api-key", default=os.environ.get("LVS_API_KEY", ""))
    parser.add_argument("--tls-ca", default="")
    parser.add_argument("--stubs", default="", help="directory of generated stubs")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="generate a video")
    gen.add_argument("prompt")
    gen.add_argument("-o", "--output", required=True)
    gen.add_argument("--negative", default="")
    gen.add_argument("--resolution", default="256x160")
    gen.add_argument("--frames", type=int, default=17)
    gen.add_argument("--fps", type=int, default=8)
    gen.add_argument("--steps", type=int, default=0)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--timeout", type=float, default=3600)
    jobs = sub.add_parser("jobs", help="list jobs")
    jobs.add_argument("--page-size", type=int, default=50)
    args = parser.parse_args()
    load_stubs(args.stubs)
    return cmd_generate(args) if args.command == "generate" else cmd_jobs(args)


if __name__ == "__main__":
    sys.exit(main())
