"""Report an agent's status to agent-status: a drop-in for the original agent_status_updater module.

Standard library only. Copy this file next to your agent, or ``pip install shared/python``. Configure
it with environment variables:

    AGENT_STATUS_URL     the project URL, e.g. https://<ref>.supabase.co or http://127.0.0.1:54321
    AGENT_STATUS_TOKEN   the agent's token (asa_...), or its host runner's
    AGENT_STATUS_SOCKET  a Unix socket to send the requests over (set by a runner for its agents)
    AGENT_STATUS_HEARTBEAT_INTERVAL   seconds between automatic heartbeats (default 30, 0 = off)
    AGENT_STATUS_TIMEOUT              seconds one request may take (default 5)
    AGENT_STATUS_FLUSH_TIMEOUT        seconds mark_agent_stopped and exit wait for delivery (default 5)
    AGENT_STATUS_MAX_BACKOFF          longest wait between retries, in seconds (default 30)

Every function returns at once and never raises: what the agent says goes into a bounded buffer that
a background thread delivers, retrying with backoff and jitter while the service is down. Only
mark_agent_stopped (and the exit handler) waits for delivery, never longer than the flush timeout.
Once mark_agent_started was called, a heartbeat goes out every interval by itself, until the agent
calls send_heartbeat a second time: from then on it is judged by its own calls, so a main loop that
hangs turns stale within its heartbeat timeout (2.5 heartbeat intervals, or of the longest gap
between its calls, unless an operator set one). Reports
carry the time they were made, so ones buffered through an outage are recorded at that time.
When the process exits, every agent it kept alive (marked started, or sent heartbeats for) and did
not mark stopped is marked stopped, so its uptime ends with the process; an earlier error stays.

An operator can stop or restart an agent no runner manages: the wish comes back in the answer to the
agent's next heartbeat or report (so within one heartbeat interval). With a handler registered by
on_command, the handler is called (in a thread of its own) and the agent is then marked stopped, or
for a restart started again. Without one, a stop marks the agent stopped and ends the process the
way SIGTERM would (the agent's own SIGTERM handler runs, if it has one), and a restart marks it
stopped and runs the same program again in the same process (os.execv), whose mark_agent_started
completes the command.
"""

import atexit
import collections
import datetime
import http.client
import json
import math
import logging
import os
import random
import re
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

__all__ = [
    "mark_agent_started",
    "mark_agent_stopped",
    "update_agent_status",
    "send_heartbeat",
    "report_error",
    "report_warning",
    "flush",
    "on_command",
]

log = logging.getLogger("agent_status_updater")

# The limits the service enforces (shared/status.ts); longer texts are cut instead of refused.
_MAX_ACTIVITY = 1000
_MAX_MESSAGE = 4000
_MAX_REPORTS_PER_REQUEST = 20
_MAX_PENDING = 100


def _seconds(name, default):
    try:
        value = float(os.environ.get(name, default))
        return value if value >= 0 else default
    except ValueError:
        return default



class _UnixSocketConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket: a runner's agent channel is one, in a folder only its user may enter."""

    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


class _UnixSocketHandler(urllib.request.HTTPHandler):
    def __init__(self, path):
        super().__init__()
        self.path = path

    def http_open(self, req):
        return self.do_open(lambda host, timeout=None, **_: _UnixSocketConnection(self.path, timeout), req)

class _Sender:
    """The buffer and the background thread that empties it."""

    def __init__(self):
        # Reentrant: a signal handler calling mark_agent_stopped may interrupt the main thread while it
        # holds the lock inside another function of this module.
        self.cond = threading.Condition(threading.RLock())
        self.states = collections.deque()  # (endpoint, body) in order
        self.beats = {}  # agent_name -> heartbeat body waiting
        self.running = set()  # agents that get automatic heartbeats
        self.own_beats = {}  # agent_name -> [monotonic time of its last send_heartbeat, longest gap] once it calls it
        self.stopped = set()
        self.known = {}  # agent_name -> (status, health) last said
        self.last_contact = {}  # agent_name -> monotonic time of the last delivered request
        self.retry_at = 0.0
        self.failures = 0
        self.flushing = 0
        self.in_flight = False
        self.dropped = 0
        self.thread = None
        self.warned_config = False
        # Stopping and exiting share one deadline: a signal handler's mark_agent_stopped, the
        # snippet's atexit call and this module's exit flush together wait at most the flush timeout.
        self.final_deadline = None
        self.command_handler = None
        self.commands_seen = set()  # ids of the operators' commands acted on, so a repeated answer acts once

    # configuration is read when first needed, so an agent may set os.environ before that
    def config(self):
        url = os.environ.get("AGENT_STATUS_URL", "").rstrip("/")
        token = os.environ.get("AGENT_STATUS_TOKEN", "")
        if not url or not token:
            if not self.warned_config:
                self.warned_config = True
                log.warning("status reporting is off: set AGENT_STATUS_URL and AGENT_STATUS_TOKEN")
            return None
        return {
            "url": url,
            "socket": os.environ.get("AGENT_STATUS_SOCKET") or None,
            "token": token,
            "interval": _seconds("AGENT_STATUS_HEARTBEAT_INTERVAL", 30.0),
            "timeout": _seconds("AGENT_STATUS_TIMEOUT", 5.0) or 5.0,
            "flush_timeout": _seconds("AGENT_STATUS_FLUSH_TIMEOUT", 5.0),
            "max_backoff": _seconds("AGENT_STATUS_MAX_BACKOFF", 30.0),
        }

    def start_thread(self):
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(target=self.loop, name="agent-status-sender", daemon=True)
            self.thread.start()

    def push_state(self, endpoint, body):
        if self.config() is None:
            return False
        with self.cond:
            beat = self.beats.pop(body["agent_name"], None)
            if beat and beat.get("last_activity") is not None and body.get("last_activity") is None:
                body["last_activity"] = beat["last_activity"]
            if endpoint == "report":
                # one id for every attempt: a report whose answer was lost is sent again, and applied once
                body["report_id"] = str(uuid.uuid4())
            self.states.append((endpoint, body))
            while len(self.states) > _MAX_PENDING:
                self.states.popleft()
                self.dropped += 1
                if self.dropped == 1:
                    log.warning("more than %d reports waiting for the service: dropping the oldest", _MAX_PENDING)
            self.start_thread()
            self.cond.notify_all()
        return True

    def push_beat(self, body):
        if self.config() is None:
            return False
        with self.cond:
            if body["agent_name"] in self.stopped:
                return False  # a stopped agent is not alive; mark_agent_started first
            # a new dict, so a heartbeat in flight is told apart from one merged meanwhile
            merged = dict(self.beats.get(body["agent_name"], {}))
            merged.update({k: v for k, v in body.items() if v is not None})
            self.beats[body["agent_name"]] = merged
            self.start_thread()
            self.cond.notify_all()
        return True

    def pending(self):
        return len(self.states) + len(self.beats)

    def declared_interval(self, name, interval):
        """Seconds between heartbeats, declared so the service derives the heartbeat timeout from them."""
        seconds = max(interval, self.own_beats.get(name, (0, 0))[1])
        return min(86400, math.ceil(seconds)) if seconds > 0 else None

    # What to send next, and when: (delay, request) where request is (endpoint, payload, items).
    def next_request(self, config):
        now = time.monotonic()
        if now < self.retry_at:
            return self.retry_at - now, None
        if self.states:
            endpoint, body = self.states[0]
            if endpoint == "heartbeat":
                return 0, ("heartbeat", body, [self.states[0]])
            batch = []
            for item in self.states:
                if item[0] != "report" or len(batch) == _MAX_REPORTS_PER_REQUEST:
                    break
                batch.append(item)
            payload = batch[0][1] if len(batch) == 1 else {"reports": [b for _, b in batch]}
            return 0, ("report", payload, batch)
        interval = config["interval"]
        for name in self.running:
            if interval > 0 and name not in self.beats and now >= self.last_contact.get(name, 0) + interval:
                self.beats[name] = {"agent_name": name, "heartbeat_interval_s": self.declared_interval(name, interval)}
        wait = None
        for name, beat in self.beats.items():
            due = self.last_contact.get(name, 0) + interval
            if self.flushing or now >= due:
                return 0, ("heartbeat", beat, [("beat", beat)])
            wait = due - now if wait is None else min(wait, due - now)
        if self.running and interval > 0:
            soonest = min(self.last_contact.get(n, 0) + interval for n in self.running) - now
            wait = soonest if wait is None else min(wait, soonest)
        return wait, None

    def loop(self):
        while True:
            config = self.config()
            with self.cond:
                wait, request = self.next_request(config)
                if request is None:
                    self.cond.wait(None if wait is None else max(wait, 0.01))
                    continue
                self.in_flight = True
            endpoint, payload, items = request
            outcome = self.post(config, endpoint, payload)
            max_backoff = config["max_backoff"]
            if outcome == "refused" and len(items) > 1:
                # one bad report refuses its whole batch: send them one by one so only that one is lost
                outcome = "delivered"
                for item in items:
                    if self.post(config, "report", item[1]) == "retry":
                        outcome = "retry"
                        break
                    with self.cond:
                        if item in self.states:
                            self.states.remove(item)
                items = [] if outcome == "retry" else items
            with self.cond:
                self.in_flight = False
                if outcome == "retry":
                    backoff = min(max_backoff, 0.5 * 2 ** min(self.failures, 10))
                    self.retry_at = time.monotonic() + (0.25 if self.flushing else backoff / 2 + random.random() * backoff / 2)
                else:
                    for item in items:
                        if item[0] == "beat":
                            name = item[1]["agent_name"]
                            if self.beats.get(name) is item[1]:
                                del self.beats[name]
                        elif item in self.states:
                            self.states.remove(item)
                self.cond.notify_all()

    def post(self, config, endpoint, payload):
        request = urllib.request.Request(
            "%s/functions/v1/%s" % (config["url"], endpoint),
            data=json.dumps(payload).encode("utf-8"),
            headers={"Authorization": "Bearer " + config["token"], "Content-Type": "application/json"},
            method="POST",
        )
        names = {payload["agent_name"]} if "agent_name" in payload else {r["agent_name"] for r in payload["reports"]}
        send = urllib.request.build_opener(_UnixSocketHandler(config["socket"])).open if config["socket"] else urllib.request.urlopen
        try:
            with send(request, timeout=config["timeout"]) as response:
                answer = response.read()
        except urllib.error.HTTPError as error:
            reason = "HTTP %d" % error.code
            try:
                body = json.loads(error.read().decode("utf-8"))["error"]
                reason = body["message"] + (" (%s)" % body["hint"] if body.get("hint") else "")
            except Exception:
                pass  # not one of the service's error bodies: the status says enough
            if error.code >= 500 or error.code in (408, 429):
                return self.failed(reason)
            # the service read it and said no: sending it again would get the same answer
            self.contact(names)
            log.warning("%s refused: %s", endpoint, reason)
            return "refused"
        except Exception as error:  # URLError, timeouts, connection resets: the service is unreachable
            return self.failed("cannot reach %s: %s" % (config["url"], error))
        if self.failures:
            log.warning("reached the service again after %d failed attempt(s)", self.failures)
        self.failures = 0
        self.contact(names)
        self.take_commands(answer)
        return "delivered"

    def take_commands(self, answer):
        """Acts on an operator's stop or restart carried by an answer (its agents' `desired`)."""
        try:
            body = json.loads(answer.decode("utf-8"))
            states = body["agents"] if "agents" in body else [body["agent"]]
        except Exception:
            return  # not the service's answer shape: nothing to act on
        for state in states:
            desired = state.get("desired") if isinstance(state, dict) else None
            if not desired or desired.get("command_id") in self.commands_seen:
                continue
            self.commands_seen.add(desired.get("command_id"))
            # its own thread: acting waits for delivery, which is this thread's work
            threading.Thread(
                target=_act_on_command, args=(state["agent_name"], desired["action"]), name="agent-status-command", daemon=True
            ).start()

    def contact(self, names):
        with self.cond:
            now = time.monotonic()
            for name in names:
                self.last_contact[name] = now

    def failed(self, reason):
        self.failures += 1
        if self.failures == 1:
            log.warning("%s; keeping %d report(s) and retrying with backoff", reason, self.pending())
        return "retry"

    def final_flush(self):
        config = self.config()
        if config is None:
            return True
        with self.cond:
            if self.final_deadline is None:
                self.final_deadline = time.monotonic() + config["flush_timeout"]
            left = self.final_deadline - time.monotonic()
            if left <= 0:
                return not self.pending() and not self.in_flight  # already gave up, and said so
        return self.flush(left)

    def flush(self, timeout=None):
        config = self.config()
        if config is None:
            return True
        deadline = time.monotonic() + (config["flush_timeout"] if timeout is None else timeout)
        with self.cond:
            self.flushing += 1
            self.retry_at = 0.0
            self.start_thread()
            self.cond.notify_all()
            try:
                while self.pending() or self.in_flight:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        log.warning("gave up waiting for %d undelivered report(s): the service is unreachable", self.pending())
                        return False
                    self.cond.wait(min(left, 0.25))
                return True
            finally:
                self.flushing -= 1


_sender = _Sender()


# NUL and lone surrogates (any surrogate code point in a Python str) cannot be stored and get the
# whole report refused; they are replaced, so a character never costs a state change.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _clip(text, limit):
    return None if text is None else _UNSTORABLE.sub("\ufffd", str(text)[:limit])


def _now():
    # when a report was made; the service records it (clamped) instead of when it arrived
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def _health(value):
    # 95.0 is meant as 95; anything else is sent as given and the service says what is wrong
    return int(value) if isinstance(value, float) and value.is_integer() else value


def mark_agent_started(agent_name):
    """Mark an agent as started: status running; automatic heartbeats begin."""
    with _sender.cond:
        _sender.final_deadline = None  # started again: a later stop gets its own flush deadline
        _sender.stopped.discard(agent_name)
        if _sender.own_beats.get(agent_name, (None, 0))[1] == 0:
            _sender.running.add(agent_name)
        _sender.known[agent_name] = ("running", None)
        config = _sender.config()
        interval = _sender.declared_interval(agent_name, config["interval"]) if config else None
    body = {"agent_name": agent_name, "event": "started", "pid": os.getpid(), "at": _now()}
    if interval:
        body["heartbeat_interval_s"] = interval
    return _sender.push_state("report", body)


def mark_agent_stopped(agent_name):
    """Mark an agent as stopped (an earlier error stays visible) and wait for delivery, up to the flush timeout.

    Calling it twice (a signal handler, then atexit) sends it once.
    """
    with _sender.cond:
        if agent_name in _sender.stopped:
            return True
        _sender.stopped.add(agent_name)
        _sender.running.discard(agent_name)
        _sender.known[agent_name] = ("stopped", 0)
    if not _sender.push_state("report", {"agent_name": agent_name, "event": "stopped", "at": _now()}):
        return False
    return _sender.final_flush()


def update_agent_status(agent_name, status=None, health=None, last_activity=None):
    """Update status (running, warning, error, or stopped), health (0-100) and what the agent is doing.

    A changed status or health is sent at once; the same status with a new activity text rides on
    the next heartbeat. Ignored after mark_agent_stopped until mark_agent_started.
    """
    health = _health(health)
    if agent_name in _sender.stopped:
        return False  # shutting down: a loop still running in another thread must not revive it
    if status == "stopped":
        # the seed accepted it here; it is a report now (without mark_agent_stopped's wait)
        with _sender.cond:
            _sender.running.discard(agent_name)
            _sender.known[agent_name] = ("stopped", 0)
        report = {
            "agent_name": agent_name,
            "event": "stopped",
            "health": health,
            "last_activity": _clip(last_activity, _MAX_ACTIVITY),
            "at": _now(),
        }
        return _sender.push_state("report", {k: v for k, v in report.items() if v is not None})
    body = {"agent_name": agent_name, "status": status, "health": health, "last_activity": _clip(last_activity, _MAX_ACTIVITY)}
    with _sender.cond:
        known_status, known_health = _sender.known.get(agent_name, (None, None))
        changed = (status is not None and status != known_status) or (health is not None and health != known_health)
        if changed:
            _sender.known[agent_name] = (status or known_status, known_health if health is None else health)
    if changed:
        body["at"] = _now()
        return _sender.push_state("heartbeat", {k: v for k, v in body.items() if v is not None})
    return _sender.push_beat(body)


def send_heartbeat(agent_name):
    """Proof of life from the agent's own loop. Calling it in every loop is fine: at most one heartbeat per interval is sent.

    From the second call (when the loop's pace is known) the automatic heartbeat stops for this agent:
    it is judged by these calls, so a main loop that hangs turns stale within its heartbeat timeout.
    The interval it declares is the longer of the configured one and the longest gap between its own
    calls, so a slow loop is not taken for a hung one.
    """
    now = time.monotonic()
    with _sender.cond:
        last, longest = _sender.own_beats.get(agent_name, (None, 0))
        _sender.own_beats[agent_name] = (now, longest if last is None else max(longest, now - last))
        if last is not None:
            _sender.running.discard(agent_name)
        config = _sender.config()
        interval = _sender.declared_interval(agent_name, config["interval"]) if config else None
    return _sender.push_beat({"agent_name": agent_name, "heartbeat_interval_s": interval})


def report_error(agent_name, error_message):
    """Report an error: status error, with the message as last_error."""
    with _sender.cond:
        _sender.known[agent_name] = ("error", None)
    message = _clip(error_message, _MAX_MESSAGE) or "unknown error"
    return _sender.push_state("report", {"agent_name": agent_name, "event": "error", "message": message, "at": _now()})


def report_warning(agent_name, warning_message, health=None):
    """Report a warning: status warning with the message and, optionally, a lowered health."""
    with _sender.cond:
        _sender.known[agent_name] = ("warning", health)
    body = {"agent_name": agent_name, "event": "warning", "message": _clip(warning_message, _MAX_MESSAGE) or "warning", "at": _now()}
    if health is not None:
        body["health"] = _health(health)
    return _sender.push_state("report", body)


def on_command(handler):
    """Call handler(action, agent_name) when an operator stops ("stop") or restarts ("restart") the agent.

    For agents no runner manages. The handler runs in a thread of its own; when it returns, the
    agent is marked stopped (for a stop) or started (for a restart), which completes the command.
    Without a handler, a stop ends the process the way SIGTERM would and a restart runs the program
    again in place (see the module's description). on_command(None) removes the handler.
    """
    _sender.command_handler = handler


def _act_on_command(agent_name, action):
    handler = _sender.command_handler
    log.warning("an operator asked to %s %s", action, agent_name)
    if handler is not None:
        try:
            handler(action, agent_name)
        except Exception:
            log.exception("the on_command handler failed on %s of %s", action, agent_name)
        if action == "restart":
            mark_agent_started(agent_name)
        else:
            mark_agent_stopped(agent_name)
        return
    mark_agent_stopped(agent_name)
    if action == "restart":
        sys.stdout.flush()
        sys.stderr.flush()
        # the same interpreter, options and arguments, in this process (the pid stays)
        os.execv(sys.executable, [sys.executable] + list(getattr(sys, "orig_argv", [sys.executable] + sys.argv)[1:]))
    # (signal.signal may only be called from the main thread: an ignored SIGTERM cannot be restored here)
    if signal.getsignal(signal.SIGTERM) == signal.SIG_IGN:
        os._exit(128 + signal.SIGTERM)
    os.kill(os.getpid(), signal.SIGTERM)


def flush(timeout=None):
    """Wait until everything pending is delivered, up to timeout seconds (default: the flush timeout)."""
    return _sender.flush(timeout)


def _at_exit():
    # The process that kept these agents alive is ending, so they no longer run: an agent that sent
    # heartbeats (or was marked started) but never marked itself stopped would otherwise read
    # "up 15 min" for a program that ran 2 s, until its heartbeat timeout. Stopped keeps an earlier
    # error (the state machine). A process that only set a status (a one-shot script) is not an
    # agent's life and stops nothing.
    with _sender.cond:
        alive = sorted((set(_sender.own_beats) | _sender.running) - _sender.stopped)
    for name in alive:
        mark_agent_stopped(name)
    return _sender.final_flush()


# Registered at import, so it runs after the agent's own atexit handlers (atexit runs in reverse).
atexit.register(_at_exit)
