"""Init benchmark: starts Lambda bootstraps under a local Runtime API and times their init.

    python3 scripts/init-bench.py [--runs 20] BOOTSTRAP [BOOTSTRAP ...]

Each run starts the binary as Lambda would (AWS_LAMBDA_RUNTIME_API and the function variables
set), with a stub AWS endpoint (AWS_ENDPOINT_URL) that answers every call with `{}` at once, and
measures, from the process start:

- ready:   when it first asks for an event (GET /runtime/invocation/next): its whole init;
- warm-up: for the cutover functions, the part of the init they log as their warm-up (the
  DynamoDB call that opens the first connection, and the HTTPS clients' trust stores), read from
  their `init: warm-up done` log line; on AWS this is where the TLS set-up moves out of the
  first invocation;
- init without the warm-up: ready minus warm-up;
- first:   when it answered its first event (the event is `{}`; a step refuses it at once).

It prints the median and the 90th percentile of each over the runs, and each binary's init
without the warm-up against the first binary's ready time (give the hello-world baseline
first). Binaries run one at a time, alternating, so both see the same machine."""
import argparse, http.server, json, os, socket, statistics, subprocess, sys, threading, time

ap = argparse.ArgumentParser()
ap.add_argument("--runs", type=int, default=20)
ap.add_argument("binaries", nargs="+")
args = ap.parse_args()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Times:
    def __init__(self):
        self.next = []
        self.answered = None
        self.done = threading.Event()


def serve(handler_for, times):
    port = free_port()

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def reply(self, code, body, headers=()):
            data = body.encode()
            self.send_response(code)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            handler_for(self, "GET")

        def do_POST(self):
            n = int(self.headers.get("content-length") or 0)
            self.rfile.read(n)
            handler_for(self, "POST")

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, port


def one_run(binary):
    t = Times()

    def runtime(h, method):
        now = time.perf_counter()
        if method == "GET" and h.path.endswith("/invocation/next"):
            t.next.append(now)
            if len(t.next) == 1:
                h.reply(200, "{}", [
                    ("Lambda-Runtime-Aws-Request-Id", "bench-1"),
                    ("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000)),
                    ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:bench"),
                    ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"),
                ])
            else:
                t.done.set()  # a second poll: the first event was answered; let it hang
        elif method == "POST":
            t.answered = t.answered or now
            h.reply(202, "{}")
        else:
            h.reply(404, "{}")

    def aws(h, method):
        h.reply(200, "{}", [("content-type", "application/x-amz-json-1.0")])

    rt, rt_port = serve(runtime, t)
    stub, stub_port = serve(aws, t)
    env = dict(os.environ)
    env.update({
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{rt_port}",
        "AWS_LAMBDA_FUNCTION_NAME": "bench", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench", "AWS_LAMBDA_LOG_LEVEL": "INFO",
        "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{stub_port}",
        "TABLE_NAME": "bench-runs", "TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:bench",
        "CUTOVER_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:bench",
        "WAVE_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:bench-wave",
        "WAVE_SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/bench",
        "APPROVAL_API_URL": "https://api.example.com", "METRICS_ENVIRONMENT": "bench",
    })
    start = time.perf_counter()
    p = subprocess.Popen([binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    ok = t.done.wait(30)
    p.kill()
    out, _ = p.communicate()
    rt.shutdown()
    stub.shutdown()
    if not ok or not t.next:
        sys.exit(f"{binary}: did not answer its first event within 30 s")
    ready = (t.next[0] - start) * 1e3
    warm = 0.0
    for line in out.decode(errors="replace").splitlines():
        if "warm_up_micros" in line:
            warm = json.loads(line)["fields"]["warm_up_micros"] / 1e3
    first = (t.answered - start) * 1e3 if t.answered else float("nan")
    return ready, warm, first


results = {b: [] for b in args.binaries}
for _ in range(args.runs):
    for b in args.binaries:
        results[b].append(one_run(b))


def p90(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.9 * (len(xs) - 1))))]


base = None
print(f"{'binary':24} {'ready ms (median / p90)':>24} {'warm-up ms':>11} {'without warm-up ms':>19} {'first answer ms':>16} {'without warm-up vs first ready':>31}")
for b, rows in results.items():
    ready = [r[0] for r in rows]
    warm = [r[1] for r in rows]
    rest = [r[0] - r[1] for r in rows]
    first = [r[2] for r in rows]
    med = statistics.median(ready)
    base = base or med
    print(f"{os.path.basename(b):24} {med:11.2f} / {p90(ready):8.2f} {statistics.median(warm):11.2f} "
          f"{statistics.median(rest):19.2f} {statistics.median(first):16.2f} {statistics.median(rest) / base:30.2f}x")
