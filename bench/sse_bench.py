"""Live updates at scale (issue 15, item 5): thousands of SSE clients on one API process.

    .venv/bin/python -m bench.sse_bench [--clients 5000] [--client-processes 2] [--rate 200]

Seeds a database of its own (one account and one API key per client, so that no credential
comes near LUMIO_SSE_MAX_PER_CREDENTIAL), starts one real ``lumio api`` process and connects
``--clients`` streams to ``GET /v1/events`` from lean client processes (raw asyncio protocols
on uvloop, ``python -m bench.sse_bench client``). Then it measures:

- memory per client: the API's resident set (VmRSS) with every stream open minus before any,
  divided by the streams;
- the API's CPU per second while the streams sit idle (heartbeats, credential rechecks);
- event delivery: status events published to Redis as the worker does (``StatusEvent`` JSON on
  ``lumio:channel_status:{account}``, pipelined in batches), each carrying the publish time,
  received by the client of that account: p50/p99/max from publish to receipt, and how many
  arrived;
- ``GET /v1/channel-status`` under a small closed loop (wrk, or bench/loadgen.py) with the
  streams open and the events flowing, against the same loop before any stream was open.

Everything it starts is stopped and the database dropped on exit (Ctrl-C too). See
bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import resource
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast

import orjson

from bench.api_bench import (
    Measurement,
    Processes,
    Server,
    Target,
    bench_database,
    choose_load_generator,
    git_revision,
    seed,
    summarise_folded,
    wait_ready,
)
from bench.common import (
    RESULTS_DIR,
    ROOT,
    VENV_BIN,
    BenchError,
    cpu_seconds,
    die_with_parent,
    exit_status,
    run_guarded,
    spawn,
)
from bench.loadgen import percentile
from lumio.dev.fakes.server import free_port
from lumio.embedded import embedded_services
from lumio.events.schemas import Reason, StatusEvent

TARGETS = {"kb_per_client": 50.0, "delivery_p99_ms": 250.0, "status_p99_ms": 25.0}
STATUS_FRAME = b"status"
HELLO_FRAME = b"hello"


# --- the client process -------------------------------------------------------------------------


class ClientRun:
    """What one client process saw, over all its streams."""

    def __init__(self) -> None:
        self.latencies_us: list[int] = []
        self.frames: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.closed_by_server = 0
        self.stopping = False


class SseClient(asyncio.Protocol):
    """One stream: sends the request, checks the status line, parses the frames it needs."""

    def __init__(self, run: ClientRun, request: bytes) -> None:
        self.run = run
        self.request = request
        self.buffer = bytearray()
        self.head_done = False
        self.greeted: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.head_done and not self._read_head():
            return
        self._read_frames()

    def _read_head(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        status = bytes(self.buffer[9:12]).decode(errors="replace")
        self.run.statuses[status] += 1
        del self.buffer[: end + 4]
        self.head_done = True
        if status != "200":
            self._settle(False)
            assert self.transport is not None
            self.transport.close()
            return False
        return True

    def _read_frames(self) -> None:
        # Chunk-size lines sit between frames; a frame is "event: NAME\ndata: JSON\n\n".
        while True:
            start = self.buffer.find(b"event: ")
            if start < 0:
                del self.buffer[: max(0, len(self.buffer) - 8)]
                return
            end = self.buffer.find(b"\n\n", start)
            if end < 0:
                del self.buffer[:start]
                return
            self._frame(bytes(self.buffer[start + 7 : end]))
            del self.buffer[: end + 2]

    def _frame(self, frame: bytes) -> None:
        name, _, rest = frame.partition(b"\n")
        self.run.frames[name.decode(errors="replace")] += 1
        if name == HELLO_FRAME:
            self._settle(True)
        elif name == STATUS_FRAME:
            event = orjson.loads(rest.removeprefix(b"data: "))
            sent = event.get("bench_sent_ns")
            if isinstance(sent, int):
                self.run.latencies_us.append((time.monotonic_ns() - sent) // 1000)

    def _settle(self, ok: bool) -> None:
        if not self.greeted.done():
            self.greeted.set_result(ok)

    def connection_lost(self, exc: Exception | None) -> None:
        self._settle(False)
        if not self.run.stopping:
            self.run.closed_by_server += 1


async def _open(
    run: ClientRun, host: str, port: int, key: str, gate: asyncio.Semaphore, wait_s: float
) -> SseClient | None:
    request = (
        f"GET /v1/events HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
        "Accept: text/event-stream\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    async with gate:
        try:
            _, client = await loop.create_connection(lambda: SseClient(run, request), host, port)
            if await asyncio.wait_for(client.greeted, wait_s):
                return client
        except (OSError, TimeoutError):
            run.statuses["socket error"] += 1
    return None


async def _client_main(config: dict[str, Any]) -> dict[str, Any]:
    run = ClientRun()
    gate = asyncio.Semaphore(int(config["ramp_concurrency"]))
    started = time.monotonic()
    opened = await asyncio.gather(
        *(
            _open(run, config["host"], config["port"], key, gate, float(config["timeout"]))
            for key in config["keys"]
        )
    )
    clients = [c for c in opened if c is not None]
    ready = {"connected": len(clients), "failed": len(opened) - len(clients)}
    ready["ramp_s"] = round(time.monotonic() - started, 2)  # type: ignore[assignment]
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    # The benchmark says "stop" on stdin (or closes it) when it is done.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    run.stopping = True
    for client in clients:
        if client.transport is not None:
            client.transport.close()
    await asyncio.sleep(0.2)
    return {
        "connected": len(clients),
        "latencies_us": run.latencies_us,
        "frames": dict(run.frames),
        "statuses": dict(run.statuses),
        "closed_by_server": run.closed_by_server,
    }


def client_main(config_path: str) -> None:
    import uvloop

    raise_open_files_limit()
    config = json.loads(Path(config_path).read_text())
    sys.stdout.write(json.dumps(uvloop.run(_client_main(config))) + "\n")


# --- the benchmark ------------------------------------------------------------------------------


def raise_open_files_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard one (children inherit it); returns the new soft one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class ClientProcesses:
    """The client processes: started with their share of the keys, told to stop on stdin."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.processes: list[subprocess.Popen[str]] = []

    def start(self, keys: list[str], count: int, port: int, ramp: int, timeout: float) -> None:
        for index in range(count):
            share = keys[index::count]
            config = self.work_dir / f"sse-client-{index}.json"
            config.write_text(
                json.dumps(
                    {
                        "host": "127.0.0.1",
                        "port": port,
                        "keys": share,
                        "ramp_concurrency": max(1, ramp // count),
                        "timeout": timeout,
                    }
                )
            )
            command = [sys.executable, "-m", "bench.sse_bench", "client", str(config)]
            self.processes.append(
                subprocess.Popen(
                    command,
                    cwd=ROOT,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    start_new_session=True,
                    preexec_fn=die_with_parent,
                )
            )

    def ready(self) -> list[dict[str, Any]]:
        return [json.loads(_line(p.stdout, "client ramp")) for p in self.processes]

    def stop(self) -> list[dict[str, Any]]:
        results = []
        for process in self.processes:
            assert process.stdin is not None
            with contextlib.suppress(OSError):
                process.stdin.write("stop\n")
                process.stdin.flush()
        for process in self.processes:
            results.append(json.loads(_line(process.stdout, "client results")))
            process.wait(30)
        self.processes.clear()
        return results

    def kill(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def _line(stream: IO[str] | None, what: str) -> str:
    assert stream is not None
    line = stream.readline()
    if not line:
        raise BenchError(f"a client process ended before its {what}")
    return line


def status_event(account_id: str) -> tuple[str, bytes]:
    event = StatusEvent(
        account_id=uuid.UUID(account_id),
        reason=Reason.STREAM_UPDATED,
        occurred_at=dt.datetime.now(dt.UTC),
        platform="twitch",
        is_online=True,
    )
    message = orjson.loads(event.to_json())
    message["bench_sent_ns"] = time.monotonic_ns()
    return event.channel, orjson.dumps(message)


async def publish_events(
    redis_url: str, accounts: list[str], rate: float, duration: float
) -> dict[str, Any]:
    """``rate`` events a second for ``duration``, in pipelined batches every 50 ms (a worker
    publishes a poll batch's events in one round trip), to accounts picked at random."""
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url)
    rng = random.Random(15)
    sent = receivers = 0
    step = 0.05
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        while (now := loop.time()) < started + duration:
            due = int(rate * (now - started + step)) - sent
            async with redis.pipeline(transaction=False) as pipe:
                for _ in range(max(0, due)):
                    pipe.publish(*status_event(rng.choice(accounts)))
                results = await pipe.execute()
            sent += len(results)
            receivers += sum(int(r) for r in results)
            await asyncio.sleep(max(0.0, started + (sent / rate) - loop.time()))
    finally:
        await redis.aclose()
    return {"published": sent, "subscribers_reached": receivers}


def measure_status(load: Any, target: Target, duration: int, api: Server) -> Measurement:
    cpu = cpu_seconds(api.process.pid)
    m: Measurement = load.run(target, duration)
    m.server_cpu_s = cpu_seconds(api.process.pid) - cpu
    return m


async def load_window(
    args: argparse.Namespace,
    load: Any,
    target: Target,
    api: Server,
    redis_url: str,
    accounts: list[str],
) -> tuple[Measurement, dict[str, Any]]:
    status = asyncio.to_thread(measure_status, load, target, args.duration, api)
    published = publish_events(redis_url, accounts, args.rate, args.duration)
    measured, events = await asyncio.gather(status, published)
    return measured, events


def _status_summary(m: Measurement) -> dict[str, Any]:
    return {
        "rps": round(m.rps, 1),
        "p50_ms": round(m.p50_ms, 2),
        "p99_ms": round(m.p99_ms, 2),
        "max_ms": round(m.max_ms, 2),
        "errors": m.errors,
        "api_cpu_us_per_request": round(m.server_cpu_us_per_request),
    }


def delivery_summary(clients: list[dict[str, Any]], published: dict[str, Any]) -> dict[str, Any]:
    latencies = sorted(lat for c in clients for lat in c["latencies_us"])
    frames: Counter[str] = Counter()
    for c in clients:
        frames.update(c["frames"])
    return {
        **published,
        "delivered": len(latencies),
        "p50_ms": percentile(latencies, 50) / 1000,
        "p99_ms": percentile(latencies, 99) / 1000,
        "max_ms": (latencies[-1] / 1000) if latencies else 0.0,
        "frames": dict(frames),
        "closed_by_server": sum(c["closed_by_server"] for c in clients),
    }


def api_command(args: argparse.Namespace) -> list[str]:
    if args.api_command:
        return shlex.split(args.api_command)
    if not args.no_gc_probe:
        return [sys.executable, "-m", "bench.gc_probe"]
    lumio_cli = VENV_BIN / "lumio"
    if lumio_cli.exists():
        return [str(lumio_cli)]
    return [sys.executable, "-c", "from lumio.cli import main; main()"]


def start_api(
    args: argparse.Namespace,
    processes: Processes,
    database_url: str,
    redis_url: str,
    work_dir: Path,
) -> Server:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "LUMIO_DATA_DIR": str(work_dir / "lumio-data"),
        "LUMIO_DB_POOL_MIN": "2",
        "LUMIO_DB_POOL_MAX": str(args.pool),
        "PYTHONUNBUFFERED": "1",
    }
    for assignment in args.api_env:
        key, _, value = assignment.partition("=")
        env[key] = value
    port = free_port()
    command = [*api_command(args), "api", "--host", "127.0.0.1", "--port", str(port)]
    api = processes.start("api", command, env, work_dir, port)
    wait_ready(api)
    return api


@contextlib.contextmanager
def py_spy(
    args: argparse.Namespace, pid: int, seconds: int, phase: str, result: dict[str, Any]
) -> Iterator[None]:
    """With ``--py-spy``: sample the API (GIL holders only) through a phase; top frames."""
    if not args.py_spy:
        yield
        return
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    folded = RESULTS_DIR / f"sse_bench-{os.getpid()}-{phase}.folded"
    command = [args.py_spy, "record", "--pid", str(pid), "--duration", str(seconds)]
    command += ["--rate", "250", "--gil", "--format", "raw", "--output", str(folded)]
    recorder = spawn(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        yield
        recorder.wait(seconds + 30)
    finally:
        if recorder.poll() is None:
            recorder.kill()
            recorder.wait()
    summary = summarise_folded(folded, top=20) if folded.exists() else {}
    result.setdefault("profiles", {})[phase] = {"folded": str(folded), **summary}
    for title, key in (("self", "self_top"), ("inclusive", "inclusive_top")):
        print(f"profile {phase}, {title}:", flush=True)
        for name, share in summary.get(key, [])[:20]:
            print(f"    {share:5.1f} %  {name}", flush=True)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"config": vars(args).copy(), "git": git_revision()}
    result["nofile"] = raise_open_files_limit()
    result["loadavg_before"] = [round(x, 2) for x in os.getloadavg()]
    with contextlib.ExitStack() as stack:
        work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lumio-sse-")))
        env_db, env_redis = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
        admin_url, redis_url = stack.enter_context(
            embedded_services(work_dir / "embedded", env_db, env_redis)
        )
        database_url = stack.enter_context(bench_database(admin_url))
        seeded = asyncio.run(seed(database_url, args.clients, args.clients))
        print(
            f"seeded {args.clients:,} accounts with a key each in {seeded.seconds:.1f} s",
            flush=True,
        )
        processes = stack.enter_context(Processes())
        api = start_api(args, processes, database_url, redis_url, work_dir)
        load = choose_load_generator(
            argparse.Namespace(
                loadgen=args.loadgen, connections=args.connections, threads=1, no_install=True
            ),
            work_dir,
        )
        target = Target("rest", "GET /v1/channel-status", api, seeded.keys)
        pid = api.process.pid

        before = measure_status(load, target, args.duration, api)
        result["status_before"] = _status_summary(before)
        print(f"channel-status, no streams: {json.dumps(result['status_before'])}", flush=True)
        time.sleep(1)
        rss_before = rss_kb(pid)

        clients = ClientProcesses(work_dir)
        stack.callback(clients.kill)
        started = time.monotonic()
        clients.start(seeded.keys, args.client_processes, api.port, args.ramp, args.timeout)
        ready = clients.ready()
        connected = sum(r["connected"] for r in ready)
        result["connect"] = {
            "connected": connected,
            "failed": sum(r["failed"] for r in ready),
            "seconds": round(time.monotonic() - started, 1),
        }
        print(f"streams: {json.dumps(result['connect'])}", flush=True)
        if not connected:
            raise BenchError("no stream could be opened:\n" + api.log_tail())
        time.sleep(args.settle)
        rss_with = rss_kb(pid)
        result["memory"] = {
            "rss_before_mb": round(rss_before / 1024, 1),
            "rss_with_mb": round(rss_with / 1024, 1),
            "kb_per_client": round((rss_with - rss_before) / connected, 1),
        }
        print(f"memory: {json.dumps(result['memory'])}", flush=True)

        cpu = cpu_seconds(pid)
        windows = {"ramp": (started, time.monotonic())}
        idle_from = time.monotonic()
        with py_spy(args, pid, args.idle, "idle", result):
            time.sleep(args.idle)
        windows["idle"] = (idle_from, time.monotonic())
        idle_cpu = (cpu_seconds(pid) - cpu) / args.idle
        result["idle"] = {"api_cpu_share_of_a_core": round(idle_cpu, 3)}
        print(f"idle with {connected:,} streams: API at {idle_cpu:.1%} of a core", flush=True)

        accounts = seeded.account_ids
        cpu = cpu_seconds(pid)
        load_from = time.monotonic()
        with py_spy(args, pid, args.duration, "load", result):
            window = load_window(args, load, target, api, redis_url, accounts)
            status, published = asyncio.run(window)
        windows["load"] = (load_from, time.monotonic())
        window_cpu = (cpu_seconds(pid) - cpu) / args.duration
        time.sleep(1)  # the last events' way to the clients
        client_results = clients.stop()
        result["status_with_streams"] = _status_summary(status)
        result["delivery"] = delivery_summary(client_results, published)
        result["delivery"]["api_cpu_share_of_a_core"] = round(window_cpu, 3)
        result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        result["api_log_tail"] = api.log_tail(20)
        result["gc_pauses"] = gc_pauses(api.log_path, windows)
    result["checks"] = checks(result, args.clients)
    return result


def gc_pauses(log: Path, windows: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """Per window, the collector's passes over 2 ms (bench.gc_probe's lines in the API log)."""
    pauses: list[tuple[float, int, float]] = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("gc-pause "):
            fields = dict(part.split("=", 1) for part in line.split()[1:])
            pauses.append((float(fields["at"]), int(fields["gen"]), float(fields["ms"])))
    out: dict[str, Any] = {}
    for name, (start, end) in windows.items():
        inside = [(gen, ms) for at, gen, ms in pauses if start <= at <= end]
        full = [ms for gen, ms in inside if gen == 2]
        out[name] = {
            "passes_over_2ms": len(inside),
            "full_passes": len(full),
            "max_ms": max((ms for _, ms in inside), default=0.0),
        }
    return out


def checks(result: dict[str, Any], clients: int) -> list[dict[str, Any]]:
    delivery = result["delivery"]
    rows = [
        (
            "streams open",
            result["connect"]["connected"],
            f"= {clients}",
            result["connect"]["connected"] == clients,
        ),
        (
            "memory per client (KB)",
            result["memory"]["kb_per_client"],
            "< 50",
            result["memory"]["kb_per_client"] < TARGETS["kb_per_client"],
        ),
        (
            "delivery p99 (ms)",
            delivery["p99_ms"],
            "< 250",
            delivery["p99_ms"] < TARGETS["delivery_p99_ms"],
        ),
        (
            "events delivered",
            delivery["delivered"],
            f"= {delivery['published']}",
            delivery["delivered"] == delivery["published"],
        ),
        (
            "channel-status p99 with streams (ms)",
            result["status_with_streams"]["p99_ms"],
            "< 25",
            result["status_with_streams"]["p99_ms"] < TARGETS["status_p99_ms"],
        ),
        (
            "channel-status errors",
            result["status_with_streams"]["errors"],
            "= 0",
            result["status_with_streams"]["errors"] == 0,
        ),
        (
            "streams closed by the server",
            delivery["closed_by_server"],
            "= 0",
            delivery["closed_by_server"] == 0,
        ),
    ]
    return [{"check": c, "measured": m, "target": t, "pass": bool(p)} for c, m, t, p in rows]


def print_report(result: dict[str, Any]) -> None:
    d = result["delivery"]
    print()
    print(f"streams: {result['connect']['connected']:,} open in {result['connect']['seconds']} s")
    print(
        f"API memory: {result['memory']['rss_before_mb']} MB -> {result['memory']['rss_with_mb']} MB, {result['memory']['kb_per_client']} KB per client"
    )
    print(f"API CPU with idle streams: {result['idle']['api_cpu_share_of_a_core']:.1%} of a core")
    print(
        f"events: {d['published']:,} published, {d['delivered']:,} delivered; p50 {d['p50_ms']:.1f} ms, p99 {d['p99_ms']:.1f} ms, max {d['max_ms']:.1f} ms; API CPU {d['api_cpu_share_of_a_core']:.1%} of a core"
    )
    for key, label in (
        ("status_before", "no streams"),
        ("status_with_streams", "with streams + events"),
    ):
        s = result[key]
        print(
            f"GET /v1/channel-status, {label}: {s['rps']:,.0f} req/s, p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, {s['api_cpu_us_per_request']} us CPU/request, errors {s['errors']}"
        )
    for name, gc_window in result["gc_pauses"].items():
        print(
            f"GC in the API, {name}: {gc_window['passes_over_2ms']} passes over 2 ms "
            f"({gc_window['full_passes']} full), longest {gc_window['max_ms']} ms"
        )
    print(f"load average before/after: {result['loadavg_before']} / {result['loadavg_after']}")
    print()
    for c in result["checks"]:
        print(
            f"{c['check']:<40} {c['measured']!s:>10}  {c['target']:<8} {'PASS' if c['pass'] else 'FAIL'}"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--ramp", type=int, default=200, help="connections opening at once")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds for a stream's hello")
    parser.add_argument("--rate", type=float, default=200.0, help="events published per second")
    parser.add_argument(
        "--duration", type=int, default=20, help="seconds of events and status load"
    )
    parser.add_argument("--idle", type=int, default=10, help="seconds of idle streams measured")
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=4, help="channel-status closed loop")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--pool", type=int, default=10)
    parser.add_argument("--api-env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--api-command")
    parser.add_argument(
        "--no-gc-probe", action="store_true", help="run plain lumio (no GC pause logging)"
    )
    parser.add_argument("--py-spy", metavar="PATH", help="profile the API while idle and loaded")
    parser.add_argument("--fail-on-miss", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run_guarded(lambda: measure(args), "processes stopped, database dropped")
    if isinstance(result, int):
        return result
    print_report(result)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"sse_bench-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nresults: {out}")
    return exit_status(result["checks"], args.fail_on_miss)


if __name__ == "__main__":
    if sys.argv[1:2] == ["client"]:
        client_main(sys.argv[2])
    else:
        sys.exit(main())
