"""The official google-genai Live client against the emulator (over TLS: the SDK only does wss).

This is the strongest check that the emulator speaks the real wire format: the SDK builds its
own setup (a camelCase/snake_case mix), sends URL-safe base64 audio, and parses every server
message with its own types.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google import genai
from google.genai import types

from switchboard.emulators.common import speech_like_pcm16
from switchboard.emulators.gemini import GeminiEmulator


def self_signed(directory: Path) -> tuple[str, str]:
    """A short-lived certificate for 127.0.0.1 (its own CA), as (certfile, keyfile)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(certfile), str(keyfile)


@pytest.mark.anyio
async def test_official_sdk_live_session_with_tool_call(tmp_path: Path) -> None:
    certfile, keyfile = self_signed(tmp_path)
    script = [
        {
            "caller": "weather in Paris",
            "tool": {"name": "get_weather", "arguments": {"city": "Paris"}},
            "say": "Sunny in Paris.",
        }
    ]
    decl = types.FunctionDeclaration(
        name="get_weather",
        description="Weather for a city",
        parameters=types.Schema(type="OBJECT", properties={"city": types.Schema(type="STRING")}),
    )
    voice = types.VoiceConfig(prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name="Kore"))
    vad = types.AutomaticActivityDetection(silence_duration_ms=300)
    config = types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        tools=[types.Tool(function_declarations=[decl])],
        speech_config=types.SpeechConfig(voice_config=voice),
        input_audio_transcription=types.AudioTranscriptionConfig(),
        output_audio_transcription=types.AudioTranscriptionConfig(),
        realtime_input_config=types.RealtimeInputConfig(automatic_activity_detection=vad),
        session_resumption=types.SessionResumptionConfig(),
        context_window_compression=types.ContextWindowCompressionConfig(
            sliding_window=types.SlidingWindow()
        ),
    )
    async with GeminiEmulator(
        script=script, api_key="k", ssl_certfile=certfile, ssl_keyfile=keyfile, realtime=False
    ) as emu:
        assert emu.base_url.startswith("https://")
        options = types.HttpOptions(
            base_url=emu.base_url,
            api_version="v1beta",
            async_client_args={"ssl": ssl.create_default_context(cafile=certfile)},
        )
        client = genai.Client(api_key="k", http_options=options)
        pcm = speech_like_pcm16("hello", 16000) + b"\x00\x00" * 16000
        audio, said, heard, calls = b"", "", "", 0
        async with client.aio.live.connect(
            model="gemini-live-2.5-flash-preview", config=config
        ) as s:
            await s.send_realtime_input(
                audio=types.Blob(data=pcm, mime_type="audio/pcm;rate=16000")
            )
            async for msg in s.receive():
                if msg.tool_call and msg.tool_call.function_calls:
                    calls += 1
                    fc = msg.tool_call.function_calls[0]
                    assert (fc.name, fc.args) == ("get_weather", {"city": "Paris"})
                    response = types.FunctionResponse(id=fc.id, name=fc.name, response={"ok": 1})
                    await s.send_tool_response(function_responses=[response])
                audio += msg.data or b""
                content = msg.server_content
                if content and content.input_transcription:
                    heard += content.input_transcription.text or ""
                if content and content.output_transcription:
                    said += content.output_transcription.text or ""
                if content and content.turn_complete:
                    break
    assert calls == 1
    assert heard == "weather in Paris"
    assert said == "Sunny in Paris."
    assert audio == speech_like_pcm16("Sunny in Paris.", 24000)
    assert emu.live.audio_bytes == len(pcm)  # URL-safe base64 from the SDK decoded
    assert [next(iter(m)) for m in emu.live.received] == [
        "setup",
        "realtime_input",
        "tool_response",
    ]
    assert emu.violations == []
