"""Deterministic fault injection: which request gets which fault depends only on the seed,
the profile and how many times that request (method + path + query) was seen before."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

# Faults that answer a request instead of the normal handler.
REQUEST_FAULTS = ("429-retry-after", "429", "500", "502", "503", "drop", "slow")


@dataclass(frozen=True)
class FaultProfile:
    name: str
    request_rate: float = 0.0  # chance a request gets one of REQUEST_FAULTS
    request_faults: tuple[str, ...] = REQUEST_FAULTS
    cut_rate: float = 0.0  # chance a report body is cut mid-stream (connection dropped)
    malformed: bool = False  # report bodies are syntactically broken
    job_fail_rate: float = 0.0  # chance a report job ends failed...
    job_cancel_rate: float = 0.0  # ...or canceled
    job_faults_first_attempt_only: bool = True
    token_revoke_every: int = 0  # every Nth authenticated Talkdesk request finds its token expired
    max_faults_per_key: int = 2  # a retried request always gets through in the end


PROFILES: dict[str, FaultProfile] = {
    "none": FaultProfile("none"),
    "light": FaultProfile("light", request_rate=0.05, cut_rate=0.1, job_fail_rate=0.1, token_revoke_every=40),
    "heavy": FaultProfile(
        "heavy", request_rate=0.3, cut_rate=0.5, job_fail_rate=0.25, job_cancel_rate=0.1, token_revoke_every=9
    ),
    "rate-limit": FaultProfile("rate-limit", request_rate=0.5, request_faults=("429-retry-after", "429")),
    "server-errors": FaultProfile("server-errors", request_rate=0.5, request_faults=("500", "502", "503", "drop")),
    "slow": FaultProfile("slow", request_rate=0.5, request_faults=("slow",)),
    "cut": FaultProfile("cut", cut_rate=1.0, max_faults_per_key=1),
    "cut-always": FaultProfile("cut-always", cut_rate=1.0, max_faults_per_key=1_000_000),
    "malformed": FaultProfile("malformed", malformed=True),
    "jobs-fail": FaultProfile("jobs-fail", job_fail_rate=1.0, job_faults_first_attempt_only=False),
    "jobs-cancel": FaultProfile("jobs-cancel", job_cancel_rate=1.0, job_faults_first_attempt_only=False),
    "jobs-fail-once": FaultProfile("jobs-fail-once", job_fail_rate=1.0),
    "token-expiry": FaultProfile("token-expiry", token_revoke_every=5),
    "always-429": FaultProfile(
        "always-429", request_rate=1.0, request_faults=("429-retry-after",), max_faults_per_key=1_000_000
    ),
    "always-500": FaultProfile("always-500", request_rate=1.0, request_faults=("500",), max_faults_per_key=1_000_000),
}


class FaultInjector:
    def __init__(self, profile: str, seed: int) -> None:
        if profile not in PROFILES:
            msg = f"unknown fault profile '{profile}'; choose one of {', '.join(PROFILES)}"
            raise ValueError(msg)
        self.profile = PROFILES[profile]
        self.seed = seed
        self._lock = threading.Lock()
        self._seen: dict[str, int] = {}
        self._faulted: dict[str, int] = {}
        self._authenticated = 0
        self.injected: list[tuple[str, str]] = []

    def _roll(self, kind: str, key: str, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            n = self._seen.get(kind + key, 0)
            self._seen[kind + key] = n + 1
            if self._faulted.get(kind + key, 0) >= self.profile.max_faults_per_key:
                return False
            hit = random.Random(f"{self.seed}:{kind}:{key}:{n}").random() < rate  # noqa: S311
            if hit:
                self._faulted[kind + key] = self._faulted.get(kind + key, 0) + 1
                self.injected.append((kind, key))
            return hit

    def request_fault(self, key: str) -> str | None:
        if not self._roll("request", key, self.profile.request_rate):
            return None
        faults = self.profile.request_faults
        return faults[random.Random(f"{self.seed}:which:{key}:{len(self.injected)}").randrange(len(faults))]  # noqa: S311

    def cut_body(self, key: str) -> bool:
        return self._roll("cut", key, self.profile.cut_rate)

    def job_outcome(self, key: str, attempt: int) -> str:
        """'done', 'failed' or 'canceled' for the attempt-th job over the same type and window."""
        if attempt > 1 and self.profile.job_faults_first_attempt_only:
            return "done"
        draw = random.Random(f"{self.seed}:job:{key}:{attempt}").random()  # noqa: S311
        if draw < self.profile.job_fail_rate:
            self.injected.append(("job-failed", key))
            return "failed"
        if draw < self.profile.job_fail_rate + self.profile.job_cancel_rate:
            self.injected.append(("job-canceled", key))
            return "canceled"
        return "done"

    def revoke_token_now(self) -> bool:
        if not self.profile.token_revoke_every:
            return False
        with self._lock:
            self._authenticated += 1
            hit = self._authenticated % self.profile.token_revoke_every == 0
        if hit:
            self.injected.append(("token-revoked", ""))
        return hit
