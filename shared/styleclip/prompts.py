"""Text directions for StyleCLIP's global directions (Patashnik et al., ICCV 2021,
orpatashnik/StyleCLIP `global_directions/`), following CLIP's prompt ensembling (Radford et al.,
ICML 2021, openai/CLIP `notebooks/Prompt_Engineering_for_ImageNet.ipynb`).

A prompt's embedding is the mean of its unit embeddings under every template, re-normalised; the
edit direction is the normalised difference target - neutral. Prompts are checked first so that
empty, over-long or wordless text gets a sentence instead of a CLIP failure.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor

from shared.errors import InputError
from shared.model_cache import DerivedCache, default_cache

__all__ = ["DEMO_TEMPLATES", "IMAGENET_TEMPLATES", "MAX_PROMPT_CHARS", "check_prompt", "ensemble_embedding",
           "templates_for", "text_direction"]

#: longest prompt accepted (CLIP reads at most 77 tokens; longer text is a paste mistake)
MAX_PROMPT_CHARS = 300

#: CLIP's 80 ImageNet prompt templates, as published with CLIP's prompt-engineering notebook.
IMAGENET_TEMPLATES: tuple[str, ...] = (
    "a bad photo of a {}.", "a photo of many {}.", "a sculpture of a {}.", "a photo of the hard to see {}.",
    "a low resolution photo of the {}.", "a rendering of a {}.", "graffiti of a {}.", "a bad photo of the {}.",
    "a cropped photo of the {}.", "a tattoo of a {}.", "the embroidered {}.", "a photo of a hard to see {}.",
    "a bright photo of a {}.", "a photo of a clean {}.", "a photo of a dirty {}.", "a dark photo of the {}.",
    "a drawing of a {}.", "a photo of my {}.", "the plastic {}.", "a photo of the cool {}.",
    "a close-up photo of a {}.", "a black and white photo of the {}.", "a painting of the {}.",
    "a painting of a {}.", "a pixelated photo of the {}.", "a sculpture of the {}.", "a bright photo of the {}.",
    "a cropped photo of a {}.", "a plastic {}.", "a photo of the dirty {}.", "a jpeg corrupted photo of a {}.",
    "a blurry photo of the {}.", "a photo of the {}.", "a good photo of the {}.", "a rendering of the {}.",
    "a {} in a video game.", "a photo of one {}.", "a doodle of a {}.", "a close-up photo of the {}.",
    "a photo of a {}.", "the origami {}.", "the {} in a video game.", "a sketch of a {}.", "a doodle of the {}.",
    "a origami {}.", "a low resolution photo of a {}.", "the toy {}.", "a rendition of the {}.",
    "a photo of the clean {}.", "a photo of a large {}.", "a rendition of a {}.", "a photo of a nice {}.",
    "a photo of a weird {}.", "a blurry photo of a {}.", "a cartoon {}.", "art of a {}.", "a sketch of the {}.",
    "a embroidered {}.", "a pixelated photo of a {}.", "itap of the {}.", "a jpeg corrupted photo of the {}.",
    "a good photo of a {}.", "a plushie {}.", "a photo of the nice {}.", "a photo of the small {}.",
    "a photo of the weird {}.", "the cartoon {}.", "art of the {}.", "a drawing of the {}.",
    "a photo of the large {}.", "a black and white photo of a {}.", "the plushie {}.", "a dark photo of a {}.",
    "itap of a {}.", "graffiti of the {}.", "a toy {}.", "itap of my {}.", "a photo of a cool {}.",
    "a photo of a small {}.", "a tattoo of the {}.",
)

#: the demo CLIP knows only its captions' words: its templates are the captions' own prefixes
DEMO_TEMPLATES: tuple[str, ...] = ("{}", "a photo of {}", "a portrait of {}", "a picture of {}")


def templates_for(card) -> tuple[str, ...]:
    """The template set of a CLIP registry record: `arch_config['prompt_templates']` ('imagenet',
    'demo' or 'none'), ImageNet's by default."""
    name = ((card.arch_config or {}).get("prompt_templates") if card is not None else None) or "imagenet"
    return {"imagenet": IMAGENET_TEMPLATES, "demo": DEMO_TEMPLATES, "none": ("{}",)}[name]


_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def check_prompt(text: str | None, what: str = "prompt") -> str:
    """The prompt stripped, or InputError with what to do: empty, longer than MAX_PROMPT_CHARS, or
    without a single letter or digit (emoji and punctuation only; CLIP's tokenizer keeps little of it).
    Control characters (NUL, ESC, ...) and bidirectional overrides are dropped first: they mean nothing
    to CLIP and would reach the page and the log inside the status line."""
    text = "".join(ch for ch in str(text or "") if unicodedata.category(ch) != "Cc" and ch not in _BIDI_CONTROLS
                   or ch in "\t\n").strip()
    if not text:
        raise InputError(f"The {what} is empty; describe the face in a few words, e.g. 'a smiling face'.")
    if len(text) > MAX_PROMPT_CHARS:
        raise InputError(f"The {what} has {len(text):,} characters; CLIP reads about 77 words at most, so keep it "
                         f"under {MAX_PROMPT_CHARS} characters (a short phrase works best).")
    if not any(unicodedata.category(ch)[0] in "LN" for ch in text):
        raise InputError(f"The {what} has no words (only symbols or emoji); CLIP needs words, e.g. 'purple hair'.")
    return re.sub(r"\s+", " ", text)


def ensemble_embedding(clip, text: str, templates: Sequence[str] = IMAGENET_TEMPLATES, *,
                       cache: DerivedCache | None = None) -> Tensor:
    """Unit-norm mean of the unit text embeddings of `text` under each template ([D], CPU float32);
    kept per (CLIP, text, templates) in the derived-data cache (`cache`, default the process model
    cache's)."""
    store = cache if cache is not None else default_cache().derived

    def build() -> Tensor:
        emb = clip.encode_text([t.format(text) for t in templates]).cpu()      # already unit rows
        return F.normalize(emb.mean(0), dim=0)

    return store.get_or_build(("text-embedding", clip.model_id, id(clip.model), text, tuple(templates)), build)


def text_direction(clip, neutral: str, target: str, templates: Sequence[str] = IMAGENET_TEMPLATES) -> Tensor:
    """Δt: the unit difference of the target's and the neutral prompt's ensembled embeddings [D]."""
    neutral, target = check_prompt(neutral, "neutral prompt"), check_prompt(target, "target prompt")
    if neutral.lower() == target.lower():
        raise InputError("The neutral and target prompts are the same; the target should describe the change, "
                         "e.g. neutral 'a face', target 'a smiling face'.")
    dt = ensemble_embedding(clip, target, templates) - ensemble_embedding(clip, neutral, templates)
    norm = float(dt.norm())
    if norm < 1e-6:
        raise InputError("This CLIP sees no difference between the two prompts; change the wording.")
    return dt / norm
