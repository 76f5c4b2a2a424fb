"""The two inspectors under test: their configuration, start (timed from exec to the first
answered request), resident memory and stop.

Each daemon runs in a session of its own; its process group id goes into a file under
`$PERF_WORK/pids`, which tests/perf/compare.sh kills on exit whatever happened to this
driver.
"""

import os
import signal
import subprocess
import time
import urllib.request


class Daemon:
    def __init__(self, name, argv, url, workdir):
        self.name = name
        self.argv = argv
        self.url = url
        self.workdir = workdir
        self.proc = None

    def start(self, deadline_s=60):
        """Starts the daemon; the seconds from exec to its first answered GET /."""
        log = open(os.path.join(self.workdir, f"{self.name}.out"), "wb")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.workdir,
        )
        pids = os.path.join(os.environ["PERF_WORK"], "pids")
        os.makedirs(pids, exist_ok=True)
        with open(os.path.join(pids, f"{self.name}.pid"), "w") as f:
            f.write(str(self.proc.pid))
        while True:
            try:
                with urllib.request.urlopen(self.url + "/", timeout=5) as response:
                    response.read()
                return time.monotonic() - t0
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode} before answering "
                    f"(see {self.workdir}/{self.name}.out)"
                )
            if time.monotonic() - t0 > deadline_s:
                raise RuntimeError(f"{self.name} did not answer within {deadline_s} s")
            time.sleep(0.002)

    def rss_mib(self):
        """Resident memory of the daemon and every process below it, in MiB."""
        return sum(rss_kib(pid) for pid in tree(self.proc.pid)) / 1024

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass


def tree(root):
    """root and all its descendants, from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields follow its last ')'.
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def ours(workdir, port, ironic_url, binary, dbsync, firewall=None):
    """Our daemon: noauth, SQLite, data stored in the database, no delay between power-ons;
    the firewall (a dict with `interface` and `root_helper`) only when asked."""
    os.makedirs(workdir, exist_ok=True)
    conf = os.path.join(workdir, "inspector.conf")
    fw = (
        f"manage_firewall = true\ndnsmasq_interface = {firewall['interface']}\n"
        f"root_helper = {firewall['root_helper']}\n"
        if firewall
        else "manage_firewall = false\n"
    )
    with open(conf, "w") as f:
        f.write(
            f"""[DEFAULT]
listen_address = 127.0.0.1
listen_port = {port}
auth_strategy = noauth
introspection_delay = 0

[database]
connection = sqlite:///{workdir}/inspector.sqlite

[firewall]
{fw}
[ironic]
auth_strategy = noauth
ironic_url = {ironic_url}

[processing]
store_data = database
"""
        )
    subprocess.run(
        [dbsync, "--config-file", conf, "upgrade"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    name = "ours-firewall" if firewall else "ours"
    return Daemon(name, [binary, "--config-file", conf], f"http://127.0.0.1:{port}", workdir)


def python(workdir, port, ironic_url, venv):
    """The Python ironic-inspector 12.x, standalone (API and conductor in one service), set up
    like ours: noauth, SQLite, data in the database, no-op PXE filter, no power-on delay."""
    os.makedirs(os.path.join(workdir, "locks"), exist_ok=True)
    conf = os.path.join(workdir, "inspector.conf")
    with open(conf, "w") as f:
        f.write(
            f"""[DEFAULT]
auth_strategy = noauth
standalone = true
transport_url = fake://
listen_address = 127.0.0.1
listen_port = {port}
introspection_delay = 0
debug = false
log_file = {workdir}/python-inspector.log

[database]
connection = sqlite:///{workdir}/inspector.sqlite

[ironic]
auth_type = none
endpoint_override = {ironic_url}

[pxe_filter]
driver = noop

[processing]
store_data = database

[oslo_concurrency]
lock_path = {workdir}/locks
"""
        )
    subprocess.run(
        [os.path.join(venv, "bin", "ironic-inspector-dbsync"), "--config-file", conf, "upgrade"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return Daemon(
        "python",
        [os.path.join(venv, "bin", "ironic-inspector"), "--config-file", conf],
        f"http://127.0.0.1:{port}",
        workdir,
    )
