"""A small OpenAI-compatible server backed by a real (tiny) transformers model, for tests.

Serves ``POST /v1/completions`` (greedy generation; ``echo`` with ``logprobs`` returns
every prompt token's log-probability, ``text_offset`` and ``top_logprobs`` as vLLM does:
the prompt is tokenized with the tokenizer's special tokens, tokens are decoded one by
one, and offsets are cumulative lengths of those strings, so a BOS shifts them) and
``POST /v1/chat/completions`` (the tokenizer's chat template, then greedy generation).

Failures on demand: ``rate_limited`` first requests answered 429 (with a short
``retry-after-ms``), every request after ``fail_after`` answered 500, ``malformed``:
this body sent as every reply, ``no_logprobs``: replies without log-probabilities.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import torch


class TinyOpenAIServer:
    """``with TinyOpenAIServer(model, tokenizer) as server:`` serves at ``server.url`` (``.../v1``)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        rate_limited: int = 0,
        fail_after: int | None = None,
        malformed: bytes | None = None,
        no_logprobs: bool = False,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.rate_limited = rate_limited
        self.fail_after = fail_after
        self.malformed = malformed
        self.no_logprobs = no_logprobs
        self.received: list[tuple[str, dict[str, Any]]] = []  # (path, body) of every request, answered or not
        self.answered = 0
        self._lock = threading.Lock()  # one model call at a time, and consistent counters
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> TinyOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # ------------------------------------------------------------------ the model
    def _token_strings(self, ids: list[int]) -> list[str]:
        """Each token as the text it adds (incremental decoding, specials kept as vLLM echoes them)."""
        out, previous = [], ""
        for k in range(1, len(ids) + 1):
            text = self.tokenizer.decode(ids[:k])
            out.append(text[len(previous) :])
            previous = text
        return out

    def _generate(self, ids: list[int], max_tokens: int) -> list[int]:
        if max_tokens < 1:
            return []
        with torch.no_grad():
            out = self.model.generate(
                torch.tensor([ids]),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                do_sample=False,
                max_new_tokens=max_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
            )
        new = out[0, len(ids) :].tolist()
        eos = self.tokenizer.eos_token_id
        return new[: new.index(eos) + 1] if eos in new else new

    def _answer_text(self, new: list[int], stop: list[str]) -> tuple[str, str]:
        """The generated text cut before the first stop string, and the finish reason."""
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        cuts = [text.find(s) for s in stop if s and s in text]
        if cuts:
            return text[: min(cuts)], "stop"
        return text, "stop" if new and new[-1] == self.tokenizer.eos_token_id else "length"

    def _logprobs(self, ids: list[int], top: int) -> dict[str, Any]:
        """OpenAI completion logprobs of every token of ``ids`` (the first has none)."""
        with torch.no_grad():
            logits = self.model(torch.tensor([ids])).logits[0].double()
        logp = torch.log_softmax(logits, dim=-1)
        strings = self._token_strings(ids)
        token_logprobs: list[float | None] = [None]
        top_logprobs: list[dict[str, float] | None] = [None]
        for k in range(1, len(ids)):
            row = logp[k - 1]
            token_logprobs.append(float(row[ids[k]]))
            best = torch.topk(row, max(top, 1)).indices.tolist()
            # vLLM: the top-k alternatives plus the token itself
            top_logprobs.append({self.tokenizer.decode([t]): float(row[t]) for t in [*best, ids[k]]})
        offsets, at = [], 0
        for s in strings:
            offsets.append(at)
            at += len(s)
        return {
            "tokens": strings, "token_logprobs": token_logprobs, "top_logprobs": top_logprobs, "text_offset": offsets
        }

    def completions(self, body: dict[str, Any]) -> dict[str, Any]:
        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
        max_tokens = int(body.get("max_tokens", 16))
        stop = body.get("stop") or []
        stop = [stop] if isinstance(stop, str) else stop
        choices, n_prompt, n_new = [], 0, 0
        for index, prompt in enumerate(prompts):
            ids = self.tokenizer(prompt)["input_ids"]
            new = self._generate(ids, max_tokens)
            text, finish = self._answer_text(new, stop)
            logprobs = None
            if body.get("logprobs") is not None and not self.no_logprobs:
                if not body.get("echo"):
                    raise NotImplementedError("the test server gives log-probabilities only with echo")
                logprobs = self._logprobs(ids + new, int(body["logprobs"]))
            choices.append({
                "index": index,
                "text": prompt + text if body.get("echo") else text,
                "logprobs": logprobs,
                "finish_reason": finish,
            })
            n_prompt += len(ids)
            n_new += len(new)
        usage = {"prompt_tokens": n_prompt, "completion_tokens": n_new, "total_tokens": n_prompt + n_new}
        return {"id": "cmpl-test", "object": "text_completion", "created": 0, "model": body["model"],
                "choices": choices, "usage": usage}

    def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        text = self.tokenizer.apply_chat_template(body["messages"], tokenize=False, add_generation_prompt=True)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        stop = body.get("stop") or []
        new = self._generate(ids, int(body.get("max_tokens", 16)))
        answer, finish = self._answer_text(new, [stop] if isinstance(stop, str) else stop)
        message = {"role": "assistant", "content": answer}
        usage = {"prompt_tokens": len(ids), "completion_tokens": len(new), "total_tokens": len(ids) + len(new)}
        return {"id": "chat-test", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage}

    # ------------------------------------------------------------------ HTTP
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    server.received.append((self.path, body))
                    n = len(server.received)
                    if n <= server.rate_limited:
                        error = {"error": {"message": "rate limited", "type": "rate_limit"}}
                        return self._send(429, json.dumps(error).encode(), {"retry-after-ms": "5"})
                    if server.fail_after is not None and server.answered >= server.fail_after:
                        error = {"error": {"message": "the model crashed", "type": "server_error"}}
                        return self._send(500, json.dumps(error).encode())
                    if server.malformed is not None:
                        return self._send(200, server.malformed)
                    if self.path == "/v1/completions":
                        reply = server.completions(body)
                    elif self.path == "/v1/chat/completions":
                        reply = server.chat(body)
                    else:
                        return self._send(404, b'{"error": {"message": "no such route"}}')
                    server.answered += 1
                self._send(200, json.dumps(reply).encode())

        return Handler
