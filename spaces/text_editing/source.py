"""The Text editing tab's source picker (generator, CLIP, seed or session latent, prompts) and what
its method sections share: loading the generator, the source latent and CLIP, mappers, renders.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import gradio as gr
import torch

from shared import hub
from shared.images import to_uint8_hwc
from shared.latent_store import LatentStore
from shared.styleclip import methods
from shared.styleclip.clip import clip_for
from shared.styleclip.mapper import companion_mappers, demo_mappers, load_mapper
from shared.styleclip.prompts import check_prompt, templates_for
from spaces.handlers import StopFlags, model_card, progress_callback, stylegan_generator, user_errors
from spaces.latents import TAB_LABELS, Pick, latent_update, source_latent
from spaces.model_picker import card_summary, model_choices

TASK = "text-editing"
TITLE = TAB_LABELS[TASK]
CLIP_ARCHS = ("clip-vit", "open-clip")
STOPS = StopFlags()   # one flag per session, for the optimisation and the comparison


@dataclass(frozen=True)
class Source:
    """The components every section reads."""
    model: gr.Dropdown
    clip: gr.Dropdown
    seed: gr.Textbox
    name: gr.Dropdown
    neutral: gr.Textbox
    target: gr.Textbox
    latents: gr.State
    pick: gr.State
    first: str | None


def clip_choices(ctx: Any) -> list[tuple[str, str]]:
    """(label, id) of the CLIPs, labelled with what each needs before it runs, ready first."""
    return [(label, i) for label, i in model_choices(ctx, TASK) if ctx.registry.get(i).arch in CLIP_ARCHS]


def default_clip(ctx: Any, model_id: str | None) -> str | None:
    """The CLIP made for `model_id` (its "clip" companion), else CLIP ViT-B/32, else the first listed."""
    ids = [i for _, i in clip_choices(ctx)]
    want = ctx.registry.companion(model_id, "clip") or "clip-vit-b-32"
    return want if want in ids else (ids[0] if ids else None)


def _mapper_options(ctx: Any, model_id: str | None) -> list[tuple[str, str, str]]:
    """(label, value, prompt) of the mappers trained for `model_id` (its "mappers" companions): the
    demo world's as 'demo:<prompt>' (those whose file is here), then the registered ones by id."""
    demo, registered = [], []
    for i in ctx.registry.companions(model_id, "mappers"):
        card = ctx.registry.get(i)
        prompt = (card.arch_config or {}).get("prompt", "")
        if card.family == "demo":
            if prompt in demo_mappers():
                demo.append((f"demo: {prompt}", f"demo:{prompt}", prompt))
        else:
            here = "" if hub.cached_path(card) else " (file not on this machine)"
            registered.append((f"{i}: {prompt}{here}", i, prompt))
    return demo + registered


def mapper_choices(ctx: Any, model_id: str | None) -> list[tuple[str, str]]:
    """(label, value) of the mappers trained for `model_id`, for the mapper dropdown."""
    return [(label, value) for label, value, _ in _mapper_options(ctx, model_id)]


_FILLER = frozenset({"a", "an", "the", "person", "people", "face", "with", "wearing", "who", "is", "has", "of",
                     "and", "in", "on", "their", "his", "her"})


def _words(text: str) -> frozenset[str]:
    return frozenset(re.findall(r"[a-z]+", (text or "").lower())) - _FILLER


def mapper_for_prompt(ctx: Any, model_id: str | None, target: str | None) -> tuple[str | None, str]:
    """(the mapper whose prompt the target prompt contains, one line saying so), or (None, a line
    saying no mapper of `model_id` is trained for it and what to do instead)."""
    options = _mapper_options(ctx, model_id)
    want = _words(target or "")
    matches = [(len(_words(prompt)), value, prompt) for _, value, prompt in options
               if _words(prompt) and _words(prompt) <= want]
    if matches:
        _, value, prompt = max(matches, key=lambda m: m[0])
        return value, f"The mapper for **{prompt}** matches the target prompt."
    if not options:
        return None, ("No mapper is trained for this generator: upload one, or use global directions or "
                      "latent optimisation.")
    have = ", ".join(f"'{prompt}'" for _, _, prompt in options)
    return None, (f"No mapper here is trained for '{target}' (this generator has {have}): pick one of those, "
                  f"upload one, or use global directions or latent optimisation, which take any prompt.")


def on_model(ctx: Any, model_id: str | None, store: LatentStore | None, target: str | None = None):
    """Summary, default CLIP, latent choices, and the mapper choices of a newly picked generator with
    the one matching the target prompt chosen (and a line saying which, or that none does)."""
    mappers = mapper_choices(ctx, model_id)
    value, note = mapper_for_prompt(ctx, model_id, target)
    return (card_summary(ctx.registry.get(model_id) if model_id else None),
            gr.update(value=default_clip(ctx, model_id)), latent_update(store, model_id, TASK),
            gr.update(choices=mappers, value=value), note)


def on_target(ctx: Any, model_id: str | None, target: str | None):
    """The target prompt changed: the mapper matching it (or none), and the line saying so."""
    value, note = mapper_for_prompt(ctx, model_id, target)
    return gr.update(value=value), note


def _clip(ctx: Any, clip_id: str | None, progress: gr.Progress | None = None):
    card = model_card(ctx, clip_id)
    if card.arch not in CLIP_ARCHS:
        raise gr.Error(f"{card.id} is not a CLIP model; pick one from the CLIP list.")
    report = progress_callback(progress)
    with user_errors():
        return card, clip_for(card.id, ctx.device, models=ctx.models, progress=report)


def setup(ctx: Any, model_id: str, clip_id: str | None, seed: str, name: str | None, store: LatentStore | None,
          progress: gr.Progress | None, need_clip: bool = True):
    """(card, G, ws, label, clip, templates) of a request; clip and templates None without `need_clip`."""
    card, G = stylegan_generator(ctx, model_id, "text editing", progress)
    ws, label = source_latent(G, card.id, seed, name, store)
    if not need_clip:
        return card, G, ws, label, None, None
    clip_card, clip = _clip(ctx, clip_id, progress)
    return card, G, ws, label, clip, templates_for(clip_card)


def render(G: Any, ws: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return G.synthesis(ws.to(next(G.parameters()).device), noise_mode="const").float().cpu().clamp(-1, 1)


def pair(G: Any, ws: torch.Tensor, edited: torch.Tensor, caption: str):
    u8 = to_uint8_hwc(torch.cat([render(G, ws), edited.cpu()]))
    return [(u8[0], "source"), (u8[1], caption)]


def pick(card: Any, res: methods.TextEdit, label: str, what: str) -> Pick | None:
    """The W+ result to send on; None for S-space results (they cannot be sent as W+)."""
    return None if res.ws is None else Pick(card.id, res.ws[:1].numpy(), f"{label} · {what}")


def target_prompt(text: str) -> str:
    with user_errors():
        return check_prompt(text, "target prompt")


def mapper(ctx: Any, choice: str | None, file: Any, G: Any):
    """The chosen mapper (a demo prompt, a registered record or an upload) on G's device, and what it is."""
    with user_errors():
        if file is not None:
            path = file if isinstance(file, str) else getattr(file, "name", None) or file.get("path")
            net, meta = load_mapper(path)
            what = f"the uploaded mapper ({meta.get('prompt') or 'prompt unknown'})"
        elif choice and choice.startswith("demo:"):
            prompt = choice.removeprefix("demo:")
            mapper_id = companion_mappers(ctx.registry.DEFAULT_GENERATOR_ID).get(prompt)
            if mapper_id is None or prompt not in demo_mappers():
                raise gr.Error(f"There is no demo mapper for {prompt!r}; pick one of the list.")
            net, meta = ctx.models.get(mapper_id)
            what = f"demo mapper '{prompt}'"
        elif choice:
            card = model_card(ctx, choice)
            path = hub.cached_path(card)
            if path is None:
                raise gr.Error(f"{card.id} is not on this machine; get it from {card.manual_url} and set "
                               f"{card.env_var} to its path (or put it under $HUB_WEIGHTS_DIR).")
            net, meta = ctx.models.get(card.id)
            what = f"mapper {card.id} ('{(card.arch_config or {}).get('prompt', '')}')"
        else:
            raise gr.Error("Pick a mapper, or upload one (.pt from StyleCLIP or .safetensors from this hub).")
    w_dim = getattr(net, "w_dim", None)
    if w_dim is not None and int(w_dim) != int(G.w_dim):
        raise gr.Error(f"That mapper works on {w_dim}-dimensional latents; this generator's are {G.w_dim}. "
                       "Pick the generator it was trained for.")
    return net.to(next(G.parameters()).device), what


def on_stop(request: gr.Request):
    STOPS.stop(request)
