#!/usr/bin/python3
"""Runs every command of README.md's ```sh blocks, so that a README edit that
breaks a command (a renamed flag, a changed default, a program that moved)
fails the test suite.

Extraction is generic: every fenced block opened with ```sh is read, lines
ending in a backslash are joined, and `#` comments are dropped; each remaining
line is one command. (Blocks opened with a bare ``` hold deploy commands --
docker, docker-compose, kubectl -- that need a Docker daemon or a cluster;
the deploy_ tests validate the files they use.) A command whose program has
no runner below fails the test: add one when the README gains a program.

Every command is checked first: its program exists, and every --flag it uses
is listed by the program's --help (for `lvs` and `lvs-model`, by the
subcommand's). Then it is run, as written, in a scratch directory where
`build/` is the build tree and `tests/` the source tree's tests, with these
substitutions and no others:

  ports 50051, 50052, 9464, 8080    free loopback ports (a shared host)
  `lvs` without --server            LVS_SERVER (the CLI's variable) names the
                                    server started from the README
  lvs-worker --model=lumina --dit=DIR ... --device=cuda:0
                                    --model=fake: no GPU here, and the lumina
                                    defaults the README's `lvs generate` uses
                                    (1248x704, 96 frames, 70 steps) take hours
                                    on a CPU; the fake model speaks the same
                                    protocol and publishes its own defaults
  DIR, GEMMA_DIR (lvs-extract)      tests/golden/vae, tests/golden/text_encoder
  clips.jsonl                       two 256x256 synthetic clips from lvs-synth
                                    (the size lvs-extract's defaults expect)
  job.json, after `train template`  edited as the README says ("edit it"):
                                    init_from the golden DiT, 2 steps, batch 1
  ID (workers reload)               the job `train submit` printed
  [--flag=value] (lvs-gateway)      optional flags: given, except --tls-ca
                                    (needs a TLS server; flag-checked only)

Not run, and why:
  scripts/demo   installs packages and rebuilds the tree it is tested from;
                 checked with `bash -n` and its argument parser (--serve), and
                 its steps (lvs-server, lvs-worker --model=lumina on the tiny
                 checkpoints, lvs generate) are the commands run here
  scripts/test   runs this test suite (recursion); checked with `bash -n` and
                 that .ci/run calls it

Usage: readme_commands_test.py SOURCE_DIR BUILD_DIR
"""

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

TIMEOUT = 240  # Seconds for one foreground command.


def sh_commands(readme_text):
    """(line number, command text) of every command in ```sh blocks."""
    out = []
    in_block = False
    is_sh = False
    pending, start = "", 0
    for number, line in enumerate(readme_text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            if in_block:
                in_block = False
            else:
                in_block = True
                is_sh = line.strip() == "```sh"
            continue
        if not (in_block and is_sh):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        words = shlex.split(pending, comments=True)
        if words:
            out.append((start, pending, words))
        pending = ""
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.2)
    return False


def http_status(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except Exception:  # noqa: BLE001 -- any failure is "not up".
        return 0


class Failure(Exception):
    pass


class Runner:
    def __init__(self, source, build):
        self.source = source
        self.build = build
        self.work = tempfile.mkdtemp(prefix="lvs-readme-")
        os.symlink(build, os.path.join(self.work, "build"))
        os.symlink(os.path.join(source, "tests"),
                   os.path.join(self.work, "tests"))
        self.ports = {"50051": free_port(), "50052": free_port(),
                      "9464": free_port(), "8080": free_port()}
        self.env = dict(os.environ)
        self.env["LVS_SERVER"] = "127.0.0.1:%d" % self.ports["50051"]
        self.background = []
        self.training_job = ""
        self.help_cache = {}
        self.ran = 0
        self.checked_only = 0

    # --- helpers -----------------------------------------------------------

    def path(self, *parts):
        return os.path.join(self.work, *parts)

    def run(self, argv, stdout_path=None, timeout=TIMEOUT, check=True):
        """Runs `argv`; `stdout_path` is `> FILE` (stdout only goes there)."""
        sink = open(self.path(stdout_path), "wb") if stdout_path else None
        try:
            out = subprocess.run(
                argv, cwd=self.work, env=self.env, timeout=timeout,
                stdout=sink or subprocess.PIPE,
                stderr=subprocess.PIPE if sink else subprocess.STDOUT)
        finally:
            if sink:
                sink.close()
        text = (out.stderr if sink else out.stdout).decode(errors="replace")
        if check and out.returncode != 0:
            raise Failure("exit status %d: %s\n%s" %
                          (out.returncode, " ".join(argv), text))
        return text

    def start(self, argv, name):
        log = open(self.path(name + ".log"), "wb")
        p = subprocess.Popen(argv, cwd=self.work, env=self.env, stdout=log,
                             stderr=subprocess.STDOUT,
                             start_new_session=True)
        self.background.append((p, name))
        return p

    def log(self, name):
        with open(self.path(name + ".log"), errors="replace") as f:
            return f.read()

    def stop_all(self):
        for p, _ in reversed(self.background):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p, _ in reversed(self.background):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def wait_listed(self, name, process, log_name):
        end = time.time() + 120
        while time.time() < end:
            if process.poll() is not None:
                raise Failure("%s exited:\n%s" % (name, self.log(log_name)))
            listed = subprocess.run(
                [os.path.join(self.build, "client/lvs"), "workers"],
                env=self.env, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL).stdout.decode()
            if re.search(r"^%s\s" % re.escape(name), listed, re.M):
                return
            time.sleep(0.3)
        raise Failure("%s never registered:\n%s" % (name, self.log(log_name)))

    def ports_replaced(self, words):
        out = []
        for w in words:
            for documented, real in self.ports.items():
                w = re.sub(r"(127\.0\.0\.1|localhost):%s\b" % documented,
                           r"\g<1>:%d" % real, w)
            out.append(w)
        return out

    # --- the --help check --------------------------------------------------

    def help_text(self, program, sub):
        key = (program, tuple(sub))
        if key not in self.help_cache:
            out = subprocess.run(
                [program] + sub + ["--help"], cwd=self.work, env=self.env,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
            if out.returncode != 0:
                raise Failure("%s %s --help: exit status %d" %
                              (program, " ".join(sub), out.returncode))
            self.help_cache[key] = out.stdout.decode(errors="replace")
        return self.help_cache[key]

    def check_flags(self, words):
        program = os.path.join(self.work, words[0])
        if not os.access(program, os.X_OK):
            raise Failure("no such program: %s" % words[0])
        # Subcommands: the leading words that are not flags or values.
        sub = []
        if words[0].endswith(("/lvs", "/lvs-model")):
            for w in words[1:]:
                if w.startswith("-"):
                    if sub:
                        break
                    continue  # A global flag before the subcommand.
                if w in ("generate", "jobs", "models", "workers", "train",
                         "queue", "conform", "list", "get", "watch", "cancel",
                         "delete", "reload", "drain", "submit", "template"):
                    sub.append(w)
                elif sub:
                    break
        text = self.help_text(program, sub)
        globals_text = self.help_text(program, []) if sub else text
        for w in words[1:]:
            w = w.strip("[]")
            if not w.startswith("--"):
                continue
            flag = w.split("=", 1)[0]
            # absl (lvs-server) lists flags with underscores.
            spellings = (flag, "-" + flag[2:].replace("-", "_"))
            if not any(re.search(re.escape(s) + r"\b", t)
                       for s in spellings for t in (text, globals_text)):
                raise Failure("%s does not list %s in --help" %
                              (" ".join([words[0]] + sub), flag))

    # --- runners, by program ------------------------------------------------

    def run_command(self, words):
        prog = words[0]
        if prog in ("scripts/demo", "scripts/test"):
            self.check_script(prog, words)
            self.checked_only += 1
            return
        self.check_flags(words)
        background = words[-1] == "&"
        if background:
            words = words[:-1]
        # The README shows the gateway alone: it serves until stopped.
        background = background or prog == "build/gateway/lvs-gateway"
        redirect = None
        if ">" in words:
            at = words.index(">")
            redirect, words = words[at + 1], words[:at]
        words = self.ports_replaced(words)
        name = os.path.basename(prog)
        if prog == "build/worker/lvs-worker":
            words = [w for w in words
                     if not w.startswith(("--dit=", "--text-encoder=",
                                          "--vae=", "--device=", "--model="))]
            words.append("--model=fake")
        elif prog == "build/tools/lvs_extract/lvs-extract":
            self.make_clips(words)
            words = self.dirs_replaced(words)
        elif prog == "build/gateway/lvs-gateway":
            words = [w.strip("[]") for w in words
                     if not w.startswith("[--tls-ca")]
        elif prog == "build/client/lvs":
            words = self.cli_prepared(words)
        elif prog not in ("build/tools/lvs_model/lvs-model",
                          "build/server/lvs-server",
                          "build/tools/lvs_motion/lvs-motion",
                          "build/trainer/lvs-trainer"):
            raise Failure("no runner for %s: add one to %s" %
                          (prog, os.path.basename(__file__)))
        words[0] = os.path.join(self.work, prog)
        self.ran += 1
        if not background:
            out = self.run(words, stdout_path=redirect)
            self.after(prog, words, out)
            return
        p = self.start(words, name)
        if prog == "build/server/lvs-server":
            if not wait_port(self.ports["50051"]):
                raise Failure("lvs-server did not listen:\n" + self.log(name))
        elif prog in ("build/worker/lvs-worker", "build/trainer/lvs-trainer"):
            worker = next(w.split("=", 1)[1] for w in words
                          if w.startswith("--name="))
            self.wait_listed(worker, p, name)
        elif prog == "build/gateway/lvs-gateway":
            url = "http://127.0.0.1:%d" % self.ports["8080"]
            end = time.time() + 30
            while http_status(url + "/healthz") != 200:
                if time.time() > end or p.poll() is not None:
                    raise Failure("lvs-gateway did not start:\n" +
                                  self.log(name))
                time.sleep(0.2)
            if http_status(url + "/v1/videos") != 200:
                raise Failure("GET /v1/videos failed")

    def check_script(self, prog, words):
        script = os.path.join(self.source, prog)
        subprocess.run(["bash", "-n", script], check=True)
        if prog == "scripts/test":
            with open(os.path.join(self.source, ".ci/run")) as f:
                if "scripts/test" not in f.read():
                    raise Failure(".ci/run does not call scripts/test")
        else:
            # Its parser accepts exactly what the README shows (and --serve,
            # which the HTTP section documents); anything else is refused.
            with open(script) as f:
                body = f.read()
            for w in words[1:]:
                if w not in re.findall(r"^\s+(--[a-z-]+)\)", body, re.M):
                    raise Failure("scripts/demo does not take %s" % w)

    def make_clips(self, words):
        items = words[words.index("--items") + 1]
        synth = os.path.join(self.build, "tools/lvs_synth/lvs-synth")
        # Writes clips/train-NNNNN.mp4 and train.jsonl (paths relative to it).
        self.run([synth, "--out", self.work, "--train", "2", "--heldout",
                  "0", "--size", "256", "--frames", "9"])
        shutil.copy(self.path("train.jsonl"), self.path(items))

    def dirs_replaced(self, words):
        golden = {"--vae": "tests/golden/vae",
                  "--text-encoder": "tests/golden/text_encoder"}
        out = list(words)
        for i, w in enumerate(out):
            if w in ("DIR", "GEMMA_DIR") and out[i - 1] in golden:
                out[i] = golden[out[i - 1]]
        return out

    def cli_prepared(self, words):
        if "submit" in words:
            with open(self.path(words[words.index("--spec") + 1])) as f:
                spec = json.load(f)
            spec.update(init_from=os.path.join(self.source, "tests/golden/dit"),
                        max_steps=2, checkpoint_interval=1)
            for task in spec["tasks"]:
                task.update(global_batch_size=1, micro_batch_size=1,
                            max_frames=9)
            with open(self.path(words[words.index("--spec") + 1]), "w") as f:
                json.dump(spec, f)
        if "reload" in words:
            if not self.training_job:
                raise Failure("workers reload before train submit")
            words = [self.training_job if w == "ID" else w for w in words]
        return words

    def after(self, prog, words, out):
        if prog == "build/client/lvs" and "submit" in words:
            m = re.search(r"trainingJobs/(\S+)", out)
            if not m:
                raise Failure("train submit printed no job:\n" + out)
            self.training_job = m.group(1)
            # The README's next step: `train watch` until it is done.
            watched = self.run([words[0], "--api-key=ADMIN", "train", "watch",
                                self.training_job])
            if "completed" not in watched:
                raise Failure("training job did not complete:\n" + watched)
        if prog == "build/tools/lvs_model/lvs-model" or (
                prog == "build/client/lvs" and "generate" in words):
            video = words[words.index("-o") + 1]
            if os.path.getsize(self.path(video)) < 1000:
                raise Failure("%s is (nearly) empty" % video)


def main():
    source, build = sys.argv[1], sys.argv[2]
    with open(os.path.join(source, "README.md")) as f:
        commands = sh_commands(f.read())
    if not commands:
        print("no ```sh command in README.md")
        return 1
    runner = Runner(source, build)
    failed = False
    try:
        for number, text, words in commands:
            started = time.time()
            print("README.md:%d: %s" % (number, " ".join(words)), flush=True)
            try:
                runner.run_command(words)
            except (Failure, subprocess.SubprocessError, OSError) as e:
                print("  FAILED: %s" % e, flush=True)
                failed = True
                break
            print("  ok (%.1f s)" % (time.time() - started), flush=True)
    finally:
        runner.stop_all()
    if failed:
        for _, name in runner.background:
            print("--- %s.log (tail)\n%s" % (name, runner.log(name)[-3000:]))
        print("scratch directory kept: " + runner.work)
        return 1
    print("%d README commands: %d run, %d checked only (see the docstring)" %
          (len(commands), runner.ran, runner.checked_only))
    shutil.rmtree(runner.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
