"""Any Hugging Face causal LM (local path or hub name, or a GGUF through ``gguf_file``), for GPUs or users' models."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from app.generation.base import GenerationError, Message, resolve_model
from app.generation.no_repeat_ngram import banned_next_tokens
from app.generation.settings import GenerationSettings


def _pick_device(device: str) -> str:
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


class _GeneratedNoRepeatNGram:
    """transformers LogitsProcessor blocking repeated n-grams of the generated tokens only (see no_repeat_ngram)."""

    def __init__(self, n: int, prompt_len: int) -> None:
        self.n = n
        self.prompt_len = prompt_len

    def __call__(self, input_ids, scores):
        for row in range(input_ids.shape[0]):
            banned = banned_next_tokens(input_ids[row, self.prompt_len:].tolist(), self.n)
            if banned:
                scores[row, list(banned)] = float("-inf")
        return scores


class TransformersGenerator:
    def __init__(self, model, tokenizer, name: str, n_ctx: int) -> None:
        self._model = model
        self._tokenizer = tokenizer
        self.name = name
        self.n_ctx = n_ctx

    @classmethod
    def load(cls, settings: GenerationSettings, models_dir: Path) -> TransformersGenerator:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        name, gguf_file = resolve_model(settings, models_dir)
        extra = {"gguf_file": gguf_file} if gguf_file else {}
        device = _pick_device(settings.device)
        if settings.n_threads:
            torch.set_num_threads(settings.n_threads)
        try:
            tokenizer = AutoTokenizer.from_pretrained(name, **extra)
            model = AutoModelForCausalLM.from_pretrained(
                name, dtype=torch.float32 if device == "cpu" else "auto", **extra).to(device)
        except (OSError, ValueError) as exc:
            raise GenerationError(f"{name}: transformers could not load the model: {exc}") from exc
        if not tokenizer.chat_template:
            raise GenerationError(f"{name}: the tokenizer has no chat template; use an instruct/chat model")
        model.eval()
        window = getattr(model.config, "max_position_embeddings", None) or settings.n_ctx
        return cls(model, tokenizer, Path(gguf_file or name).name, min(settings.n_ctx, window))

    def _prompt_ids(self, messages: list[Message]):
        ids = self._tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                  return_dict=True)["input_ids"]
        return ids.to(self._model.device)

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def count_prompt_tokens(self, messages: list[Message]) -> int:
        return int(self._prompt_ids(messages).shape[1])

    def stream(self, messages: list[Message], settings: GenerationSettings) -> Iterator[str]:
        import torch
        from transformers import LogitsProcessorList, TextIteratorStreamer

        input_ids = self._prompt_ids(messages)
        prompt_len = int(input_ids.shape[1])
        if prompt_len >= self.n_ctx:
            raise GenerationError(f"{self.name}: prompt of {prompt_len} tokens does not fit n_ctx={self.n_ctx}")
        sample = settings.temperature > 0
        if sample:
            torch.manual_seed(settings.seed)
        processors = LogitsProcessorList(
            [_GeneratedNoRepeatNGram(settings.no_repeat_ngram_size, prompt_len)]
            if settings.no_repeat_ngram_size > 0 else [])
        streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = {
            "input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "streamer": streamer,
            "max_new_tokens": min(settings.max_new_tokens, self.n_ctx - prompt_len),
            "do_sample": sample, "repetition_penalty": settings.repetition_penalty, "logits_processor": processors,
            "pad_token_id": self._tokenizer.pad_token_id or self._tokenizer.eos_token_id,
        }
        if sample:
            kwargs.update(temperature=settings.temperature, top_p=settings.top_p, top_k=settings.sampling_top_k)
        else:
            # Unset sampling knobs the model's generation_config may carry, so greedy stays greedy and quiet.
            kwargs.update(temperature=None, top_p=None, top_k=None)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with torch.inference_mode():
                    self._model.generate(**kwargs)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread below
                errors.append(exc)
                streamer.end()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        for piece in streamer:
            if piece:
                yield piece
        thread.join()
        if errors:
            raise GenerationError(f"{self.name}: generation failed: {errors[0]}") from errors[0]
