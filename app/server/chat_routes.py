"""The OpenAI-compatible endpoints: /v1/models, /v1/chat/completions (streamed and not) and /v1/embeddings."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

import numpy as np
from fastapi import APIRouter, Request
from pydantic import ValidationError
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from app.answer.answer_pipeline import AskOptions, DoneEvent, RetryEvent, TokenEvent
from app.answer.base_selection import SELECTION_JOIN
from app.config import ConfigError, base_registry
from app.server.answer_format import answer_sources, correction, plain_text, sources_block
from app.server.base_routes import MODEL_PREFIX
from app.server.errors import ApiError
from app.server.generation_queue import QueueFullError
from app.server.openai_schema import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Delta,
    DocqaExtension,
    EmbeddingRequest,
    ModelCard,
    ModelList,
    Usage,
    error_body,
)
from app.server.services import ServerServices, Snapshot
from app.wiring import kb_notices
from ingest.store.base_registry import BaseRegistryError, InvalidBaseNameError, UnknownBaseError
from ingest.store.knowledge_base import KnowledgeBaseError
from prompts.conversation import Turn
from prompts.records import Answer
from retrieval.question_check import QuestionError, validate_question

router = APIRouter()
T = TypeVar("T")
# Seconds between checks whether a client waiting for a whole (non-streamed) answer is still there.
DISCONNECT_POLL_S = 0.25
# The sources block this server appends to answers; stripped when a client sends an answer back as history.
_SOURCES_TAIL = re.compile(r"\n\n(?:来源|Sources):\n\[\d+\].*\Z", re.S)


def model_ids(services: ServerServices) -> list[str]:
    """"docqa" (and "docqa:NAME", its older alias) for the server's own base, "docqa/NAME" for every usable base."""
    try:
        bases = [b.name for b in base_registry(services.settings).list() if not b.problem]
    except BaseRegistryError:
        bases = []
    return ["docqa", f"docqa:{services.kb_name}", *(MODEL_PREFIX + name for name in bases)]


def requested_bases(services: ServerServices, model: str, bases: list[str] | None = None) -> list[str] | None:
    """The bases a request asks for: ``bases`` if given, else those of a "docqa/A+B" model id; None for the
    server's own base ("docqa"). An unknown model or base is a 404 in OpenAI's shape, naming what is offered."""
    if model in ("docqa", f"docqa:{services.kb_name}") and not bases:
        return None
    if not bases:
        if not model.startswith(MODEL_PREFIX):
            raise ApiError(404, f"unknown model {model!r}; this server offers {', '.join(model_ids(services))}",
                           code="model_not_found", param="model")
        bases = model[len(MODEL_PREFIX):].split(SELECTION_JOIN)
    registry = base_registry(services.settings)
    for name in bases:
        try:
            registry.get(name)
        except (InvalidBaseNameError, UnknownBaseError) as exc:
            raise ApiError(404, f"unknown knowledge base in model {model!r}: {exc}", code="model_not_found",
                           param="model") from None
        except BaseRegistryError:
            pass  # damaged: left out of a selection with a line, or a 503 when it is the only one
    return bases


def check_model(services: ServerServices, model: str) -> None:
    requested_bases(services, model)


@router.get("/v1/models")
async def list_models(request: Request) -> ModelList:
    services: ServerServices = request.app.state.services
    created = int(services.settings.kb_path.stat().st_mtime) if services.settings.kb_path.exists() else 0
    ids = await run_in_threadpool(model_ids, services)
    return ModelList(data=[ModelCard(id=m, created=created) for m in ids])


def conversation(body: ChatCompletionRequest, max_turns: int) -> tuple[str, list[Turn]]:
    """The question (the last user message) and the earlier user/assistant pairs as history. System messages are
    not passed on: docqa's own instructions decide how it answers."""
    talk = [m for m in body.messages if m.role in ("user", "assistant")]
    if not talk or talk[-1].role != "user":
        raise ApiError(400, "the last message must be a user message holding the question", param="messages")
    question = talk[-1].text()
    turns: list[Turn] = []
    pending: str | None = None
    for message in talk[:-1]:
        if message.role == "user":
            pending = message.text()
        elif pending is not None:
            turns.append(Turn(pending, _SOURCES_TAIL.sub("", message.text()).strip()))
            pending = None
    return question, turns[-max_turns:] if max_turns else []


def ask_options(body: ChatCompletionRequest, services: ServerServices, history: list[Turn]) -> AskOptions:
    max_new_tokens = body.max_completion_tokens or body.max_tokens
    if max_new_tokens is not None:
        # No answer can be longer than the model's context window: a larger request is capped to it.
        max_new_tokens = min(max_new_tokens, services.settings.generation.n_ctx)
    changes = {"temperature": body.temperature, "top_p": body.top_p, "seed": body.seed,
               "max_new_tokens": max_new_tokens,
               "repetition_penalty": body.repetition_penalty, "no_repeat_ngram_size": body.no_repeat_ngram_size}
    try:
        generation = services.settings.generation.replace(**{k: v for k, v in changes.items() if v is not None})
    except ValidationError as exc:
        raise ApiError(400, f"decoding parameter out of range: {exc.errors()[0]['msg']}") from None
    return AskOptions(top_k=body.top_k, rerank=body.rerank, min_evidence_score=body.min_evidence_score,
                      generation=generation, history=history)


async def snapshot_for(services: ServerServices, bases: list[str] | None) -> Snapshot:
    """The pipeline over the server's base or the bases asked for; 503 when none of them can answer."""
    try:
        return await run_in_threadpool(services.snapshot, bases)
    except (KnowledgeBaseError, ConfigError) as exc:
        raise ApiError(503, str(exc), "server_error", "no_knowledge_base") from None


def _extension(answer: Answer, snapshot: Snapshot, retried: bool) -> DocqaExtension:
    retriever = snapshot.pipeline.retriever
    return DocqaExtension(refused=answer.refused, refusal_reason=answer.refusal_reason, answer=answer.text,
                          sources=answer_sources(answer), retried=retried, generation=snapshot.generation,
                          timings=answer.timings, standalone_question=answer.standalone_question,
                          follow_up=answer.follow_up,
                          bases=list(getattr(retriever, "bases", None) or [getattr(retriever, "base", "")]),
                          notices=kb_notices(retriever))


def _usage(answer: Answer) -> Usage:
    generated = int(answer.timings.get("generated_tokens", 0))
    return Usage(completion_tokens=generated, total_tokens=generated)


async def _until_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Run ``work``, cancelling it if the client goes away first (a non-streamed answer has no other signal)."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
            if done:
                return task.result()
            if await request.is_disconnected():
                raise ApiError(499, "client closed the request", code="client_closed")
    finally:
        if not task.done():
            task.cancel()
            # Let the cancellation run through the answer stream (which stops the generation) before returning.
            await asyncio.wait({task})


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request):
    services: ServerServices = request.app.state.services
    queue = request.app.state.queue
    bases = await run_in_threadpool(requested_bases, services, body.model, body.bases)
    question, history = conversation(body, services.settings.server.max_history_turns)
    try:
        question = validate_question(question, services.settings.limits)
    except QuestionError as exc:
        raise ApiError(400, f"question rejected: {exc}", param="messages") from None
    options = ask_options(body, services, history)
    snapshot = await snapshot_for(services, bases)
    reservation = queue.reserve()
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    events = queue.run(lambda: snapshot.pipeline.stream(question, options), reservation)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return EventSourceResponse(_sse(events, body, snapshot, completion_id, created, include_usage,
                                        services.settings.server.correction_separator),
                                   ping=15, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def collect() -> tuple[Answer, bool]:
        retried, answer = False, None
        async for event in events:  # to the end, so the queue sees the generation finish
            if isinstance(event, RetryEvent):
                retried = True
            elif isinstance(event, DoneEvent):
                answer = event.answer
        if answer is None:
            raise RuntimeError("the answer stream ended without an answer")
        return answer, retried

    try:
        answer, retried = await _until_disconnected(request, collect())
    finally:
        await events.aclose()
    text = plain_text(answer.text) + (sources_block(answer, answer_sources(answer)) if body.sources_block else "")
    return ChatCompletion(id=completion_id, created=created, model=body.model,
                          choices=[Choice(message=AssistantMessage(content=text))], usage=_usage(answer),
                          docqa=_extension(answer, snapshot, retried))


async def _sse(events: AsyncIterator, body: ChatCompletionRequest, snapshot: Snapshot, completion_id: str,
               created: int, include_usage: bool, separator: str) -> AsyncIterator[dict]:

    def chunk(delta: Delta, finish: str | None = None, **extra) -> dict:
        return {"data": ChatCompletionChunk(id=completion_id, created=created, model=body.model,
                                            choices=[ChunkChoice(delta=delta, finish_reason=finish)],
                                            **extra).model_dump_json(exclude_none=True)}

    attempt, retried = "", False
    try:
        yield chunk(Delta(role="assistant", content=""))
        async for event in events:
            if isinstance(event, TokenEvent):
                attempt += event.text
                yield chunk(Delta(content=plain_text(event.text)))
            elif isinstance(event, RetryEvent):
                # The draft was a refusal; the second attempt starts on its own paragraph.
                attempt, retried = "", True
                yield chunk(Delta(content=separator))
            elif isinstance(event, DoneEvent):
                answer = event.answer
                tail = plain_text(correction(answer, attempt, separator))
                if body.sources_block:
                    tail += sources_block(answer, answer_sources(answer))
                if tail:
                    yield chunk(Delta(content=tail))
                yield chunk(Delta(), "stop", docqa=_extension(answer, snapshot, retried))
                if include_usage:
                    yield {"data": ChatCompletionChunk(id=completion_id, created=created, model=body.model,
                                                       choices=[], usage=_usage(answer)).model_dump_json()}
        yield {"data": "[DONE]"}
    except QueueFullError as exc:
        yield {"data": json.dumps(error_body(str(exc), "rate_limit_error", "queue_full"), ensure_ascii=False)}
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # after the headers went out an error can only be an event
        message = str(exc) if isinstance(exc, (QuestionError, KnowledgeBaseError)) else type(exc).__name__
        yield {"data": json.dumps(error_body(f"answering failed: {message}", "server_error"), ensure_ascii=False)}
    finally:
        await events.aclose()


@router.post("/v1/embeddings")
async def embeddings(body: EmbeddingRequest, request: Request) -> dict:
    services: ServerServices = request.app.state.services
    check_model(services, body.model)
    texts = [body.input] if isinstance(body.input, str) else body.input
    limit = services.settings.server.max_embedding_inputs
    if not texts or len(texts) > limit:
        raise ApiError(400, f"input must hold 1 to {limit} texts (server.max_embedding_inputs)", param="input")
    max_chars = services.settings.limits.max_question_chars if body.input_type == "query" else None
    for i, text in enumerate(texts):
        if not text.strip():
            raise ApiError(400, f"input[{i}] is empty", param="input")
        if max_chars is not None and len(text) > max_chars:
            raise ApiError(400, f"input[{i}] has {len(text)} characters; a query may have {max_chars}", param="input")
    embedder = await run_in_threadpool(lambda: services.embedder)
    encode = embedder.encode_queries if body.input_type == "query" else embedder.encode_passages
    vectors = await run_in_threadpool(encode, texts)

    def encoded(vector) -> list[float] | str:
        if body.encoding_format == "base64":
            return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
        return [float(x) for x in vector]

    return {"object": "list", "model": body.model,
            "data": [{"object": "embedding", "index": i, "embedding": encoded(v)} for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": 0, "total_tokens": 0}}
