"""The OpenAI-compatible request and response bodies (the subset docqa serves), with docqa's own knobs as extra
request fields and its sources and refusal reason in the ``docqa`` extension field of responses."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Bases one question may read at once (each is searched in turn before the fusion).
MAX_BASES_PER_QUESTION = 16


class _Request(BaseModel):
    # Clients send fields docqa has no use for (user, presence_penalty, logit_bias ...): ignored, not an error.
    model_config = ConfigDict(extra="ignore")


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None


class ChatMessage(_Request):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text or "" for part in self.content if part.type == "text")


class StreamOptions(_Request):
    include_usage: bool = False


class ChatCompletionRequest(_Request):
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    seed: int | None = None
    # docqa's own knobs (the openai client sends them with extra_body={...}).
    top_k: int | None = Field(None, ge=1, le=100, description="passages retrieved for the question")
    rerank: bool | None = None
    min_evidence_score: float | None = Field(None, ge=-1, le=1)
    repetition_penalty: float | None = Field(None, gt=0)
    no_repeat_ngram_size: int | None = Field(None, ge=0)
    sources_block: bool = Field(True, description="append the cited sources to the answer text")
    # The knowledge bases to answer from (several: retrieval fused across them); the same as model "docqa/A+B".
    bases: list[str] | None = Field(None, min_length=1, max_length=MAX_BASES_PER_QUESTION)


class EmbeddingRequest(_Request):
    model: str
    input: str | list[str]
    # The openai client asks for base64 (little-endian float32) unless told otherwise.
    encoding_format: Literal["float", "base64"] = "float"
    # e5-style embedders embed questions and passages differently.
    input_type: Literal["query", "passage"] = "passage"


class RetrieveRequest(_Request):
    query: str
    top_k: int | None = Field(None, ge=1, le=100)
    rerank: bool | None = None
    bases: list[str] | None = Field(None, min_length=1, max_length=MAX_BASES_PER_QUESTION)


class DeleteDocumentsRequest(_Request):
    ids: list[str] = Field(min_length=1, max_length=1000)


class CreateBaseRequest(_Request):
    name: str = Field(max_length=1000)
    # The base's own settings: {"chunking": {...}, "ocr": {...}} (ingest/store/base_registry.py).
    settings: dict[str, dict[str, Any]] | None = None


class RenameBaseRequest(_Request):
    name: str = Field(max_length=1000)


class DeleteBaseRequest(_Request):
    # The base's name again: a delete cannot happen by a slip (it removes the base's documents and uploads).
    confirm: str = ""


class RescanRequest(_Request):
    # Ingest the uploads a killed server never confirmed (kept aside in uploads/.interrupted/ until asked for).
    include_interrupted: bool = False
    # Follow symbolic links that lead out of the scanned folders (skipped, with a line each, by default).
    follow_links: bool = False


class Source(BaseModel):
    number: int
    # The knowledge base the passage is from.
    base: str = ""
    file: str
    page: int | None
    # "p.3", "slide 3" (a deck), or "" for a file without pages.
    location: str = ""
    heading: str | None
    quote: str
    score: float


class DocqaExtension(BaseModel):
    refused: bool
    refusal_reason: str = ""
    answer: str
    sources: list[Source] = Field(default_factory=list)
    retried: bool = False
    generation: str = ""
    timings: dict[str, float] = Field(default_factory=dict)
    # What a follow-up was retrieved and judged as, and how it was made (resolved, rewritten, …): the same as the
    # chat page's "searched for" line.
    standalone_question: str = ""
    follow_up: str = ""
    # The bases answered from, and one line per base of the request left out (missing, damaged, empty).
    bases: list[str] = Field(default_factory=list)
    notices: list[str] = Field(default_factory=list)


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"] = "stop"


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    docqa: DocqaExtension


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: Literal["stop", "length"] | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    docqa: DocqaExtension | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "docqa"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """The OpenAI error shape, which every client knows how to show."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}
