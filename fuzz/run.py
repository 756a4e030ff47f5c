"""Run every fuzz target for a bounded time: ``python -m fuzz.run [seconds per target]``.

What ``make fuzz`` (and CI, 20 s per target) runs. Each target gets a seed corpus written from
``tests/fixtures`` (real messages for libFuzzer to mutate) under ``out/fuzz/<target>/``, where
libFuzzer also keeps what it found and writes any crash as ``crash-<sha1>``. A crash fails the
run; reproduce it with ``python -m fuzz.<target> out/fuzz/<target>/crash-…``, fix it, and add
the input as a regression test beside the parser's property tests.

atheris ships prebuilt wheels for Linux x86-64 only; elsewhere the run stops with that reason
(and fails under CI=true). The hypothesis property tests in ``make test`` cover the same parsers.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
OUT = ROOT / "out" / "fuzz"
TARGETS = ("fuzz_media", "fuzz_webhooks", "fuzz_providers")


def _json(path: str) -> Any:
    return json.loads((FIXTURES / path).read_text())


def _frames(messages: list[object]) -> bytes:
    return b"\x00".join(json.dumps(m).encode() for m in messages)


def _seeds() -> dict[str, list[bytes]]:
    twilio = _json("twilio/inbound.json")["messages"]
    telnyx = _json("telnyx/media_inbound.json")["frames"]
    voice = _json("twilio/voice_webhook.json")
    webhook = _json("telnyx/webhook_call_initiated.json")["body"]
    params = list(voice["params"].items())[:1] or [("CallSid", "CA1")]
    openai = _json("openai/server_events.json")["events"]
    gemini = _json("gemini/live_server_messages.json")["messages"]
    listen = [v for k, v in _json("deepgram/listen_server_messages.json").items() if k[0] != "_"]
    speak = list(_json("deepgram/speak_messages.json")["server"].values())
    sse = "".join(
        f"data: {json.dumps(c)}\n\n" for c in _json("gemini/rest_sse_chunks.json")["chunks"]
    )
    return {
        "fuzz_media": [bytes([k]) + _frames(telnyx if k else twilio) for k in range(5)],
        "fuzz_webhooks": [
            "\x00".join(
                [voice["url"], *params[0], voice["signature"], "algorithm=HMAC_SHA1",
                 str(int(time.time()))]
            ).encode(),
            json.dumps(webhook).encode(),
            base64.urlsafe_b64encode(b'{"c":"call_1","k":"twilio","e":1}') + b".AAAA",
        ],
        "fuzz_providers": [
            b"\x00" + _frames(openai),
            b"\x01" + _frames(gemini),
            b"\x02" + _frames(listen),
            b"\x03" + _frames(speak),
            b"\x04" + sse.encode(),
        ],
    }  # fmt: skip


def main(argv: list[str]) -> int:
    seconds = int(argv[1]) if len(argv) > 1 else int(os.environ.get("FUZZ_SECONDS", "20"))
    if importlib.util.find_spec("atheris") is None:
        print("fuzz: atheris is not installed (prebuilt for Linux x86-64 only)", file=sys.stderr)
        return 1 if os.environ.get("CI", "").lower() == "true" else 0
    failed: list[str] = []
    for target, seeds in _seeds().items():
        work = OUT / target
        corpus = work / "corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        for index, seed in enumerate(seeds):
            (corpus / f"seed-{index}").write_bytes(seed)
        for old in work.glob("crash-*"):
            old.unlink()
        command = [
            sys.executable, "-m", f"fuzz.{target}", str(corpus),
            f"-max_total_time={seconds}", f"-artifact_prefix={work}/", "-max_len=65536",
            "-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1",
        ]  # fmt: skip
        print(f"fuzz: {target} for {seconds} s", flush=True)
        log = work / "log.txt"
        with log.open("w") as out:
            code = subprocess.run(
                command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
            ).returncode
        stats = [ln for ln in log.read_text().splitlines() if ln.startswith("stat::")]
        print("  " + ", ".join(ln.removeprefix("stat::").strip() for ln in stats[:3]))
        crashes = sorted(p.name for p in work.glob("crash-*")) + sorted(
            p.name for p in work.glob("timeout-*")
        )
        if code != 0 or crashes:
            failed.append(target)
            print(f"fuzz: {target} FAILED (exit {code}) {' '.join(crashes)}; see {log}")
            print("\n".join(log.read_text().splitlines()[-40:]))
    print(f"fuzz: {len(TARGETS) - len(failed)} passed, {len(failed)} failed")
    if failed:
        return 1
    print(f"(each target ran {seconds} s; corpora and logs in {OUT.relative_to(ROOT)})")
    shutil.rmtree(OUT / "tmp", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
