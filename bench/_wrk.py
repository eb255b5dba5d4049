"""wrk, the HTTP load generator of bench/api.py: installed from Debian's package when missing, run with a
Lua script that counts every answer's status code (wrk's own count lumps 3xx with 2xx) and prints one
line of figures at the end: requests, seconds, latency percentiles from wrk's histogram, socket errors.

`start()` returns the running process; `stop()` ends it early (SIGINT: wrk stops and reports as if its
duration were over) and `result()` reads its figures."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  local merged, parts = {}, {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do merged[status] = (merged[status] or 0) + count end
  end
  for status, count in pairs(merged) do parts[#parts + 1] = string.format('"%d": %d', status, count) end
  local e = summary.errors
  io.write(string.format('BENCH {"seconds": %.6f, "requests": %d, "p50": %.3f, "p90": %.3f, "p99": %.3f, '
    .. '"max": %.3f, "socket_errors": %d, "statuses": {%s}}\\n', summary.duration / 1e6, summary.requests,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3,
    e.connect + e.read + e.write + e.timeout, table.concat(parts, ", ")))
end
"""


def ensure_installed():
    """wrk on the PATH: installed with apt-get when missing and we are root; otherwise stop with the command."""
    if shutil.which("wrk"):
        return
    if os.geteuid() != 0:
        sys.exit("wrk is missing: install it with `sudo apt-get install wrk` (Debian's package), then run again.")
    print("wrk is missing: installing Debian's package (apt-get install wrk)", flush=True)
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, stdout=subprocess.DEVNULL).returncode != 0:  # maybe no package lists yet
        subprocess.run(["apt-get", "update", "-q"], stdout=subprocess.DEVNULL, check=True)
        subprocess.run(install, stdout=subprocess.DEVNULL, check=True)
    if not shutil.which("wrk"):
        sys.exit("apt-get installed wrk but it is not on the PATH")


def start(url, *, connections, seconds, key=None):
    """wrk on `url` with `connections` connections (at most 2 threads: this is a 2-CPU machine) for
    `seconds`; a request unanswered after 60 s counts as a timeout (wrk's default, 2 s, would count
    a slow answer as an error instead of measuring it)."""
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)  # noqa: SIM115
    with script:
        script.write(SCRIPT)
    command = ["wrk", "-t", str(min(connections, 2)), "-c", str(connections), "-d", f"{seconds}s",
               "--timeout", "60s", "-s", script.name, url]
    if key:
        command[1:1] = ["-H", f"Authorization: Bearer {key}"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    process.script = script.name
    return process


def stop(process):
    process.send_signal(signal.SIGINT)


def result(process):
    """The run's figures: rate (req/s), p50/p90/p99/max (ms), requests, non_2xx, socket_errors, errors."""
    output = process.communicate()[0]
    os.unlink(process.script)
    lines = [line for line in output.splitlines() if line.startswith("BENCH ")]
    if process.returncode != 0 or not lines:
        sys.exit(f"wrk failed ({process.returncode}):\n{output}")
    figures = json.loads(lines[-1].removeprefix("BENCH "))
    statuses = {int(status): count for status, count in figures.pop("statuses").items()}
    figures["non_2xx"] = sum(count for status, count in statuses.items() if not 200 <= status < 300)
    figures["statuses"] = statuses
    figures["rate"] = figures["requests"] / figures["seconds"]
    figures["errors"] = figures["non_2xx"] + figures["socket_errors"]
    return figures


def run(url, *, connections, seconds, key=None):
    return result(start(url, connections=connections, seconds=seconds, key=key))
