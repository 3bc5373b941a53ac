#!/usr/bin/python3
"""Checks of the deploy files that need more than a linter (run by ctest).

  deploy_check.py dockerfiles SOURCE_DIR
  deploy_check.py k8s SOURCE_DIR KUBECTL SERVER WORKER [TRAINER]
                  [--gateway=GATEWAY]
  deploy_check.py compose-cpu SOURCE_DIR COMPOSE SERVER WORKER [--fake-model]
                  [--trainer=TRAINER] [--gateway=GATEWAY]
  deploy_check.py metrics SOURCE_DIR COMPOSE SERVER WORKER [--fake-model]
                  [--trainer=TRAINER] [--gateway=GATEWAY]

compose-cpu parses the CPU profile of deploy/compose/docker-compose.yml as
docker-compose resolves it, checks its ports, volumes and health checks
against the command lines, starts the server and worker command lines on
loopback (container ports mapped to free ports, volumes to a temporary
directory or their host sources) and waits until both are healthy through the
compose health checks; with --trainer it also starts the trainer-cpu command
line and waits until its compose health check passes and the server counts
it as a connected idle worker; with --gateway it also starts lvs-gateway's
command line and waits until its compose health check (the server reachable)
passes. metrics brings up the same stack (with
--trainer, the trainer too) and checks that every lvs_* metric used by the
Grafana dashboard and the alert rules exists in the real /metrics of the
server, the worker or the trainer. --fake-model swaps the tiny Lumina
model for the fake one when the worker was built without the pipeline.
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

PUBLIC_FLAGS_OF = {}  # binary path -> set of flag names it accepts


def fail(message):
    raise AssertionError(message)


def flags_of(binary):
    """Returns the long flag names a program lists in its help (dashes)."""
    if binary not in PUBLIC_FLAGS_OF:
        text = subprocess.run([binary, "--help"], capture_output=True,
                              text=True, check=False)
        text = text.stdout + text.stderr
        if "--helpfull" in text:  # absl: --help lists only the main file's flags
            text = subprocess.run([binary, "--helpfull"], capture_output=True,
                                  text=True, check=False)
            text = text.stdout + text.stderr
        names = {m.replace("_", "-") for m in re.findall(r"--([a-z][a-z0-9_-]*)", text)}
        PUBLIC_FLAGS_OF[binary] = names
    return PUBLIC_FLAGS_OF[binary]


def check_flags(where, argv, binaries):
    program = argv[0]
    if program not in binaries:
        fail(f"{where}: unknown program {program!r}")
    if binaries[program] is None:
        return
    known = flags_of(binaries[program])
    for arg in argv[1:]:
        name = arg[2:].split("=", 1)[0].replace("_", "-")
        if not arg.startswith("--") or name not in known:
            fail(f"{where}: {program} has no flag {arg!r} (see {program} --help)")


def flag(argv, name):
    for arg in argv:
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return None


# ---------------------------------------------------------------- dockerfiles
def check_dockerfiles(src):
    for name in ("Dockerfile.cpu", "Dockerfile.cuda"):
        path = os.path.join(src, "docker", name)
        text = open(path, encoding="utf-8").read()
        args = dict(re.findall(r"^ARG (\w+)=(\S+)", text, re.M))
        froms = re.findall(r"^FROM (\S+)(?: AS (\w+))?", text, re.M)
        if len(froms) < 2:
            fail(f"{name}: not multi-stage")
        for image, _ in froms:
            image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), "?"), image)
            if "?" in image or ":" not in image or image.endswith(":latest"):
                fail(f"{name}: base image {image!r} is not pinned to a tag")
        final = text[text.rindex("\nFROM "):]
        users = re.findall(r"^USER (\S+)", final, re.M)
        if not users or users[-1] in ("root", "0"):
            fail(f"{name}: the runtime stage does not end as a non-root USER")
        dev = re.findall(r"\blib[\w.+-]*-dev\b", re.sub(r"#.*", "", final))
        if dev:
            fail(f"{name}: the runtime stage installs {dev}")
        if "scripts/bootstrap" not in text:
            fail(f"{name}: does not install through scripts/bootstrap")
        for source in re.findall(r"^COPY (?!--from)(\S+) ", text, re.M):
            if source != "." and not os.path.exists(os.path.join(src, source)):
                fail(f"{name}: COPY source {source} does not exist")
        for line in re.findall(r"^(?:CMD|ENTRYPOINT) (\[.*?\])$",
                               text.replace("\\\n", ""), re.M):
            json.loads(line)
    if name.endswith("cuda") and "LVS_WITH_CUDA=ON" not in text:
        fail("Dockerfile.cuda: does not build with LVS_WITH_CUDA=ON")
    ignore = open(os.path.join(src, ".dockerignore"), encoding="utf-8").read().split()
    for needed in (".git", "build-*"):
        if needed not in ignore:
            fail(f".dockerignore: {needed} is not ignored")
    print("dockerfiles: ok")


# ------------------------------------------------------------------------ k8s
def check_dialing_pod(overlay, objs, name, binaries, scraped):
    """A Deployment that dials in to the server (worker, trainer): real
    flags, probes on its --metrics-listen port, a GPU exactly on the gpu
    overlay, read-only checkpoints, and a headless metrics Service that
    prometheus-k8s.yml scrapes on that port."""
    if ("Deployment", name) not in objs:
        fail(f"{overlay}: no Deployment {name}")
    pod = objs[("Deployment", name)]["spec"]["template"]
    c = pod["spec"]["containers"][0]
    check_flags(f"{overlay} {name}", c["args"], binaries)
    metrics_port = int(flag(c["args"], "metrics-listen").rsplit(":", 1)[1])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        spec = c[probe]
        port = (spec.get("httpGet") or spec.get("tcpSocket"))["port"]
        if port != metrics_port:
            fail(f"{overlay}: {name} {probe} port {port} is not --metrics-listen")
    gpus = c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu")
    device = flag(c["args"], "device")
    if overlay == "gpu" and (gpus != 1 or not device.startswith("cuda")):
        fail(f"gpu: {name} needs nvidia.com/gpu: 1 and --device=cuda")
    if overlay == "cpu" and (gpus is not None or device != "cpu"):
        fail(f"cpu: {name} must not ask for a GPU")
    for mount in c["volumeMounts"]:
        if mount["mountPath"] == "/models" and not mount.get("readOnly"):
            fail(f"{overlay}: {name}: checkpoints must be mounted read-only")
    service = objs.get(("Service", f"{name}-metrics"))
    if service is None:
        fail(f"{overlay}: no headless Service {name}-metrics")
    labels = pod["metadata"]["labels"]
    if any(labels.get(k) != v for k, v in service["spec"]["selector"].items()):
        fail(f"{overlay}: Service {name}-metrics does not select the {name} pods")
    if metrics_port not in [p["port"] for p in service["spec"]["ports"]]:
        fail(f"{overlay}: Service {name}-metrics does not serve port {metrics_port}")
    if (f"{name}-metrics.lvs.svc.cluster.local", metrics_port) not in scraped:
        fail(f"prometheus-k8s.yml does not scrape {name}-metrics on {metrics_port}")


def check_trainer_pod(overlay, objs):
    """The trainer's --work-dir is a writable PVC that a second pod never
    mounts at the same time."""
    spec = objs[("Deployment", "lvs-trainer")]["spec"]
    if spec.get("replicas") != 1 or spec.get("strategy", {}).get("type") != "Recreate":
        fail(f"{overlay}: lvs-trainer must be replicas 1 with strategy Recreate")
    pod = spec["template"]["spec"]
    c = pod["containers"][0]
    work_dir = flag(c["args"], "work-dir")
    mount = next((m for m in c["volumeMounts"] if m["mountPath"] == work_dir), None)
    if mount is None or mount.get("readOnly"):
        fail(f"{overlay}: lvs-trainer --work-dir={work_dir} is not a writable mount")
    volume_spec = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    claim = volume_spec.get("persistentVolumeClaim", {}).get("claimName")
    if ("PersistentVolumeClaim", claim) not in objs:
        fail(f"{overlay}: lvs-trainer --work-dir is not on a PersistentVolumeClaim")


def check_gateway_pod(overlay, objs, server_argv, binaries):
    """lvs-gateway: real flags, --server on the server's public port, probes
    on its --listen port, and a Service that selects it."""
    if ("Deployment", "lvs-gateway") not in objs:
        fail(f"{overlay}: no Deployment lvs-gateway")
    pod = objs[("Deployment", "lvs-gateway")]["spec"]["template"]
    c = pod["spec"]["containers"][0]
    check_flags(f"{overlay} lvs-gateway", c["args"], binaries)
    public = flag(server_argv, "listen").rsplit(":", 1)[1]
    if flag(c["args"], "server") != f"lvs-server:{public}":
        fail(f"{overlay}: lvs-gateway --server is not lvs-server:{public}")
    port = int(flag(c["args"], "listen").rsplit(":", 1)[1])
    for probe in ("readinessProbe", "livenessProbe"):
        if c[probe]["httpGet"]["port"] != port:
            fail(f"{overlay}: lvs-gateway {probe} is not on --listen's port {port}")
    service = objs.get(("Service", "lvs-gateway"))
    if service is None:
        fail(f"{overlay}: no Service lvs-gateway")
    labels = pod["metadata"]["labels"]
    if any(labels.get(k) != v for k, v in service["spec"]["selector"].items()):
        fail(f"{overlay}: Service lvs-gateway does not select the gateway pods")


def k8s_scraped(src):
    """(DNS name, port) of every dns_sd target of prometheus-k8s.yml."""
    prom = yaml.safe_load(open(os.path.join(src, "deploy/prometheus/prometheus-k8s.yml")))
    return {(n, sd["port"]) for job in prom["scrape_configs"]
            for sd in job.get("dns_sd_configs", []) for n in sd["names"]}


def check_k8s(src, kubectl, binaries):
    docs = {}
    scraped = k8s_scraped(src)
    for overlay in ("cpu", "gpu"):
        out = subprocess.run(
            [kubectl, "kustomize", os.path.join(src, "deploy/k8s/overlays", overlay)],
            capture_output=True, text=True, check=True).stdout
        objs = {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(out) if o}
        docs[overlay] = objs
        server = objs[("Deployment", "lvs-server")]["spec"]
        if server["replicas"] != 1 or server["strategy"]["type"] != "Recreate":
            fail(f"{overlay}: lvs-server must be replicas 1 with strategy Recreate")
        container = server["template"]["spec"]["containers"][0]
        argv = [re.sub(r"\$\((\w+)\)", "1", a) for a in container["args"]]
        check_flags(f"{overlay} lvs-server", argv, binaries)
        health = flag(argv, "health-listen")
        for probe in ("startupProbe", "readinessProbe"):
            port = container[probe]["grpc"]["port"]
            if not isinstance(port, int) or not health.endswith(f":{port}"):
                fail(f"{overlay}: server {probe} must use the numeric --health-listen port")
        for name in ("lvs-worker", "lvs-trainer"):
            check_dialing_pod(overlay, objs, name, binaries, scraped)
        check_trainer_pod(overlay, objs)
        check_gateway_pod(overlay, objs, argv, binaries)
        hpa = objs[("HorizontalPodAutoscaler", "lvs-worker")]["spec"]
        if hpa["metrics"][0]["external"]["metric"]["name"] != "lvs_queue_depth":
            fail(f"{overlay}: HPA must scale on lvs_queue_depth")
        if ("PodDisruptionBudget", "lvs-worker") not in objs:
            fail(f"{overlay}: no PodDisruptionBudget for the workers")
    print("k8s: ok")


# -------------------------------------------------------------------- compose
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def compose_config(compose_bin, src, profile, secure=False):
    files = ["docker-compose.yml"] + (["docker-compose.secure.yml"] if secure else [])
    argv = [compose_bin]
    for name in files:
        argv += ["-f", os.path.join(src, "deploy/compose", name)]
    out = subprocess.run(argv + ["--profile", profile, "config"],
                         capture_output=True, text=True, check=True).stdout
    return yaml.safe_load(out)


def check_all_compose_commands(compose_bin, src, binaries, scraped):
    """Every lvs command line of every compose file and profile uses real
    flags, and every lvs process with a metrics port is scraped."""
    for profile in ("cpu", "gpu"):
        for secure in (False, True):
            config = compose_config(compose_bin, src, profile, secure)
            for name, svc in config["services"].items():
                argv = svc.get("command")
                if not isinstance(argv, list) or not argv[0].startswith("lvs"):
                    continue
                where = f"compose {name} ({profile}{', secure' if secure else ''})"
                check_flags(where, argv, binaries)
                metrics = flag(argv, "metrics-listen")
                if metrics and f"{name}:{metrics.rsplit(':', 1)[1]}" not in scraped:
                    fail(f"{where}: prometheus.yml does not scrape {name}:{metrics.rsplit(':', 1)[1]}")


def container_port(entry):
    """Container port of a compose port entry (short or long syntax)."""
    if isinstance(entry, dict):
        return int(entry["target"])
    return int(str(entry).split("/")[0].rsplit(":", 1)[-1])


def volume(entry):
    """A compose volume entry as {type, source, target, read_only}."""
    if isinstance(entry, dict):
        return entry
    parts = entry.split(":")
    mode = parts[2] if len(parts) > 2 else "rw"
    return {"type": "bind" if parts[0].startswith("/") else "volume",
            "source": parts[0], "target": parts[1], "read_only": mode == "ro"}


def listened_ports(argv):
    return {int(v.rsplit(":", 1)[1]) for a in argv if "listen=" in a
            for v in [a.split("=", 1)[1]] if v}


class Stack:
    """The CPU profile's lvs processes started on loopback."""

    def __init__(self, src, compose_bin, binaries, fake_model):
        self.src = src
        self.binaries = binaries
        self.fake_model = fake_model
        self.compose_bin = compose_bin
        self.config = compose_config(compose_bin, src, "cpu")
        self.tmp = tempfile.TemporaryDirectory(prefix="lvs-deploy-")
        self.ports = {}  # container port -> loopback port
        self.procs = []
        self.logs = []

    def check_static(self):
        services = self.config["services"]
        server = services["lvs-server"]
        worker = services["worker-cpu"]
        published = {container_port(p) for p in server.get("ports", [])}
        exposed = {int(p) for p in server.get("expose", [])}
        for port in listened_ports(server["command"]):
            if port not in published | exposed:
                fail(f"lvs-server listens on {port} but neither publishes nor exposes it")
        for name in ("worker-cpu", "trainer-cpu"):
            target = flag(services[name]["command"], "server")
            if target != f"lvs-server:{self.port_of(server, 'worker-listen')}":
                fail(f"{name}: --server={target} is not lvs-server's --worker-listen")
        for name in ("worker-cpu", "trainer-cpu"):
            svc = services[name]
            metrics = self.port_of(svc, "metrics-listen")
            if str(metrics) not in [str(p) for p in svc.get("expose", [])]:
                fail(f"{name}: metrics port {metrics} is not exposed")
            if f":{metrics}/" not in " ".join(svc.get("healthcheck", {}).get("test", [])):
                fail(f"{name}: the health check does not ask --metrics-listen's port")
        gateway = services["lvs-gateway"]
        if flag(gateway["command"], "server") != f"lvs-server:{self.port_of(server, 'listen')}":
            fail("lvs-gateway: --server is not lvs-server's --listen")
        if self.port_of(gateway, "listen") not in {container_port(p) for p in gateway["ports"]}:
            fail("lvs-gateway: --listen's port is not published")
        if f":{self.port_of(gateway, 'listen')}/" not in " ".join(gateway["healthcheck"]["test"]):
            fail("lvs-gateway: the health check does not ask --listen's port")
        trainer = services["trainer-cpu"]
        work_dir = flag(trainer["command"], "work-dir")
        if not any(v["type"] == "volume" and v["target"] == work_dir and not v.get("read_only")
                   for v in map(volume, trainer["volumes"])):
            fail(f"trainer-cpu: --work-dir={work_dir} is not on a writable named volume")
        data_dir = flag(server["command"], "data-dir")
        if not any(v["type"] == "volume" and v["target"] == data_dir
                   for v in map(volume, server["volumes"])):
            fail(f"lvs-server: --data-dir={data_dir} is not on a named volume")
        for name in ("worker-cpu", "trainer-cpu"):
            for v in map(volume, services[name]["volumes"]):
                if v["target"].startswith(("/models", "/data")) and not v.get("read_only"):
                    fail(f"{name}: {v['target']} is not read-only")
        for flag_name in ("dit", "text-encoder", "vae"):
            path = flag(worker["command"], flag_name)
            if not any(volume(v)["target"] == path for v in worker["volumes"]):
                fail(f"worker-cpu: --{flag_name}={path} is not a mounted volume")
        prom = yaml.safe_load(open(os.path.join(self.src, "deploy/prometheus/prometheus.yml")))
        targets = {t for job in prom["scrape_configs"] for sc in job["static_configs"]
                   for t in sc["targets"]}
        check_all_compose_commands(self.compose_bin, self.src, self.binaries, targets)

    @staticmethod
    def port_of(svc, name):
        return int(flag(svc["command"], name).rsplit(":", 1)[1])

    def translate(self, svc, argv):
        """Maps a container command line onto loopback and host paths."""
        mounts = []
        for v in map(volume, svc.get("volumes", [])):
            if v["type"] == "bind":
                mounts.append((v["target"], v["source"]))
            else:  # a named volume: a fresh directory, as Docker creates it
                os.makedirs(os.path.join(self.tmp.name, v["source"]), exist_ok=True)
                mounts.append((v["target"], os.path.join(self.tmp.name, v["source"])))
        mounts.sort(key=lambda m: -len(m[0]))
        out = []
        for arg in argv:
            def port(m):
                p = int(m.group(2))
                self.ports.setdefault(p, free_port())
                return f"127.0.0.1:{self.ports[p]}"
            arg = re.sub(r"(0\.0\.0\.0|localhost|lvs-server):(\d+)", port, arg)
            if "=" in arg:
                key, value = arg.split("=", 1)
                for target, source in mounts:
                    if value == target or value.startswith(target + "/"):
                        value = source + value[len(target):]
                        break
                arg = f"{key}={value}"
            out.append(arg)
        return out

    def start(self, name):
        svc = self.config["services"][name]
        argv = self.translate(svc, svc["command"])
        if self.fake_model and flag(argv, "model") == "lumina":
            argv = [a for a in argv if not a.startswith(("--dit=", "--text-encoder=", "--vae="))]
            argv = [("--model=fake" if a == "--model=lumina" else a) for a in argv]
        argv[0] = self.binaries[argv[0]]
        log = open(os.path.join(self.tmp.name, f"{name}.log"), "w+")
        self.logs.append((name, log))
        print(f"starting {name}: {' '.join(argv)}", flush=True)
        self.procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))
        return svc

    def wait_healthy(self, name, svc, timeout):
        test = self.translate(svc, svc["healthcheck"]["test"])
        if test[0] != "CMD" or test[1] != "lvs-healthcheck":
            fail(f"{name}: health check must run lvs-healthcheck")
        command = [sys.executable, os.path.join(self.src, "docker/lvs-healthcheck")] + test[2:]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    fail(f"a process exited with {proc.returncode} before {name} was healthy")
            if subprocess.run(command, capture_output=True, check=False).returncode == 0:
                print(f"{name}: healthy ({' '.join(test[2:])})", flush=True)
                return
            time.sleep(0.5)
        fail(f"{name}: not healthy after {timeout}s")

    def up(self):
        server = self.start("lvs-server")
        self.wait_healthy("lvs-server", server, 30)
        worker = self.start("worker-cpu")
        self.wait_healthy("worker-cpu", worker, 240)
        if self.binaries.get("lvs-gateway") is not None:
            self.wait_healthy("lvs-gateway", self.start("lvs-gateway"), 30)

    def scrape(self, container_port):
        url = f"http://127.0.0.1:{self.ports[container_port]}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()

    def down(self):
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
        for name, log in self.logs:
            log.seek(0)
            print(f"--- {name} log (tail)\n" + "".join(log.readlines()[-15:]))
        self.tmp.cleanup()


def exposed_names(text):
    """Metric names a /metrics page defines (histograms with their series)."""
    names = set()
    for line in text.splitlines():
        m = re.match(r"# TYPE (\w+) (\w+)", line)
        if m:
            names.add(m.group(1))
            if m.group(2) in ("histogram", "summary"):
                names |= {m.group(1) + s for s in ("_bucket", "_sum", "_count")}
        elif line and not line.startswith("#"):
            names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return names


def used_names(src):
    used = {}
    dash = json.load(open(os.path.join(src, "deploy/grafana/dashboards/lvs-overview.json")))
    for panel in dash["panels"]:
        for target in panel["targets"]:
            for name in re.findall(r"\blvs_[a-z0-9_]+", target["expr"]):
                used.setdefault(name, f"dashboard panel {panel['title']!r}")
    rules = yaml.safe_load(open(os.path.join(src, "deploy/prometheus/alerts.yml")))
    for group in rules["groups"]:
        for rule in group["rules"]:
            for name in re.findall(r"\blvs_[a-z0-9_]+", rule["expr"]):
                used.setdefault(name, f"alert {rule['alert']}")
    return used


def run_stack(args, check):
    src, compose_bin, server, worker = args[:4]
    trainer = next((a.split("=", 1)[1] for a in args if a.startswith("--trainer=")), None)
    gateway = next((a.split("=", 1)[1] for a in args if a.startswith("--gateway=")), None)
    binaries = {"lvs-server": server, "lvs-worker": worker, "lvs-trainer": trainer,
                "lvs-gateway": gateway}
    stack = Stack(src, compose_bin, binaries, "--fake-model" in args)
    stack.check_static()
    try:
        stack.up()
        check(stack)
    finally:
        stack.down()


def idle_workers(stack):
    server = stack.config["services"]["lvs-server"]
    text = stack.scrape(Stack.port_of(server, "metrics-listen"))
    # Generators and trainers alike.
    return sum(float(v) for v in re.findall(
        r'^lvs_workers\{kind="(?:generator|trainer)",state="idle"\} (\S+)$', text, re.M))


def check_compose_cpu(stack):
    if idle_workers(stack) < 1:
        fail("the server reports no idle worker after the worker became healthy")
    if stack.binaries["lvs-trainer"] is not None:
        stack.wait_healthy("trainer-cpu", stack.start("trainer-cpu"), 60)
        deadline = time.monotonic() + 60
        while idle_workers(stack) < 2:
            for proc in stack.procs:
                if proc.poll() is not None:
                    fail(f"a process exited with {proc.returncode} before the trainer connected")
            if time.monotonic() > deadline:
                fail("the server does not count the trainer after 60s")
            time.sleep(0.5)
        print("trainer-cpu: connected", flush=True)
    print("compose-cpu: ok")


def check_metrics(stack):
    services = stack.config["services"]
    names = exposed_names(stack.scrape(Stack.port_of(services["lvs-server"], "metrics-listen")))
    names |= exposed_names(stack.scrape(Stack.port_of(services["worker-cpu"], "metrics-listen")))
    used = used_names(stack.src)
    if stack.binaries["lvs-trainer"] is not None:
        stack.wait_healthy("trainer-cpu", stack.start("trainer-cpu"), 60)
        names |= exposed_names(stack.scrape(Stack.port_of(services["trainer-cpu"], "metrics-listen")))
    else:
        skipped = sorted(n for n in used if n.startswith("lvs_trainer_"))
        used = {n: w for n, w in used.items() if not n.startswith("lvs_trainer_")}
        print(f"metrics: no lvs-trainer built; not checked: {', '.join(skipped)}")
    if not used:
        fail("no lvs_ metric found in the dashboard and the alerts")
    missing = sorted(f"{n} ({where})" for n, where in used.items() if n not in names)
    if missing:
        fail("metrics used but not exported: " + ", ".join(missing))
    print(f"metrics: all {len(used)} names exist: {', '.join(sorted(used))}")


def main(argv):
    mode, args = argv[1], argv[2:]
    if mode == "dockerfiles":
        check_dockerfiles(args[0])
    elif mode == "k8s":
        gateway = next((a.split("=", 1)[1] for a in args if a.startswith("--gateway=")), None)
        args = [a for a in args if not a.startswith("--gateway=")]
        binaries = {"lvs-server": args[2], "lvs-worker": args[3],
                    "lvs-trainer": args[4] if len(args) > 4 else None,
                    "lvs-gateway": gateway}
        check_k8s(args[0], args[1], binaries)
    elif mode == "compose-cpu":
        run_stack(args, check_compose_cpu)
    elif mode == "metrics":
        run_stack(args, check_metrics)
    else:
        fail(f"unknown mode {mode}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
