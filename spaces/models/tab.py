"""Models tab: the registry as a table, downloads into the Hub cache, and how to add local weights.

Layout and wiring only; resolution, download and verification are `shared.hub.fetch` (the
timm-style resolution order: local override -> Hub cache -> `hf_hub_download` -> verify).
"""
from __future__ import annotations

from functools import partial
from typing import Any

import gradio as gr

from shared import hub
from shared.demo.bundle import metrics_markdown
from spaces.handlers import model_card, progress_callback, user_errors
from spaces.model_picker import card_summary, format_bytes

COLUMNS = ["Model", "Family", "Resolution", "Licence", "Size", "Cached", "Hash", "Source"]
COLUMN_WIDTHS = ["18%", "8%", "10%", "18%", "7%", "7%", "14%", "18%"]

INTRO = """### Models
Every network the hub knows, with its licence. Weights come from the Hugging Face Hub on first use
and stay in the Hub cache; **Download** fetches one now (with a progress bar) and verifies it, and
**Refresh table** checks what is cached and hashes each cached file. Most NVIDIA-derived weights are
licensed for **non-commercial use only**."""


def _hash_state(card: Any, cached: bool, check: bool) -> str:
    """What is known about the file's sha256; `check` hashes cached files (memoised per process)."""
    if card.builtin is not None:
        return "n/a (made in code)"
    if cached and check:
        state = hub.verification(card)
        if state.startswith("unverified (first seen "):
            return f"unverified (first seen {state[len('unverified (first seen '):][:12]}…)"
        return {"verified": f"verified (sha256 {card.sha256[:12]}…)" if card.sha256 else "verified",
                "mismatch": "MISMATCH: download again"}.get(state, state)
    if card.sha256:
        return f"pinned sha256 {card.sha256[:12]}…"
    return "not pinned: first download's hash is recorded"


def registry_rows(ctx: Any, *, check_hashes: bool = True) -> list[list[str]]:
    """One row per registry record, in COLUMNS order.

    With `check_hashes`, cached files are hashed (once per process) and compared with the record
    or with the hash recorded at their first download; without, only what the record says is shown.
    """
    rows = []
    for card in ctx.registry.cards():
        cached = hub.is_cached(card)
        cached_text = "built in" if card.builtin is not None else ("yes" if cached else "no")
        rows.append([card.id, card.family, f"{card.resolution} px" if card.resolution else "", card.license,
                     format_bytes(card.size), cached_text, _hash_state(card, cached, check_hashes),
                     "; ".join(str(src) for src in card.sources)])
    return rows


def local_weights_markdown(ctx: Any) -> str:
    """How to supply weights that are not on the Hub (local-file records)."""
    local = [c for c in ctx.registry.cards() if not c.hub_sources and c.builtin is None and c.family != "demo"]
    lines = ["These models are published elsewhere (NVIDIA NGC, Google Drive). Download the file yourself "
             "where its licence allows, then either **set the environment variable** to its path or **put "
             "the file at the listed path**, and restart the hub. The file is verified and loaded like a "
             "Hub download; the same variable also overrides any Hub model with a local file.", "",
             "| Model | Get the file from | Environment variable | Default path |", "|---|---|---|---|"]
    for c in local:
        where = c.manual_url or c.official_repo
        path = "; ".join(f"`{s.path}`" for s in c.local_sources)
        lines.append(f"| `{c.id}` | {where} | `{c.env_var}` | {path} |")
    if not local:
        lines.append("| (none) | | | |")
    return "\n".join(lines)


# ---- adapters ----------------------------------------------------------------------------------
def _on_list(ctx: Any):
    """The registry table, with the hash of every cached file checked."""
    return registry_rows(ctx, check_hashes=True)


def _on_download(ctx: Any, model_id: str, progress: gr.Progress = gr.Progress(track_tqdm=True)):
    """Fetch one model's weights into the cache (or find its local file) and verify them."""
    card = model_card(ctx, model_id)
    if card.builtin is not None:
        return (f"`{card.id}` is built into the hub (weights made in code); there is nothing to download.",
                registry_rows(ctx, check_hashes=True))
    with user_errors():
        path = hub.fetch(card, progress=progress_callback(progress))
        state = _hash_state(card, True, True)
    return (f"`{card.id}` is cached at `{path}` ({format_bytes(path.stat().st_size)}; hash: {state}).",
            registry_rows(ctx, check_hashes=True))


def _on_download_in_page(ctx: Any, model_id: str, progress: gr.Progress = gr.Progress(track_tqdm=True)):
    """The page's Download button: like `_on_download`, but a failure keeps the table, marks the
    model's row and says why beside the button instead of turning the outputs into error badges."""
    try:
        return _on_download(ctx, model_id, progress)
    except gr.Error as e:
        rows = registry_rows(ctx, check_hashes=False)
        for row in rows:
            if row[0] == model_id:
                row[COLUMNS.index("Cached")] = "no: download failed (see below the table)"
        return f"**Download of `{model_id}` failed:** {e.message}", rows


def _on_pick(ctx: Any, model_id: str | None) -> str:
    return card_summary(ctx.registry.get(model_id) if model_id else None)


# ---- layout ------------------------------------------------------------------------------------
def build_tab(ctx: Any) -> None:
    ids = [c.id for c in ctx.registry.cards()]
    with gr.Tab("Models", id="models"):
        gr.Markdown(INTRO)
        # Hashing cached files can take seconds, so the first table only shows what the records say.
        table = gr.Dataframe(registry_rows(ctx, check_hashes=False), headers=COLUMNS, interactive=False, wrap=True,
                             column_widths=COLUMN_WIDTHS, max_height=420, elem_id="models-table")
        with gr.Row():
            picker = gr.Dropdown(ids, value=ids[0] if ids else None, label="Model", scale=3, min_width=260,
                                 elem_id="models-picker")
            with gr.Column(scale=1, min_width=160):
                download = gr.Button("Download", variant="primary", elem_id="models-download")
                refresh = gr.Button("Refresh table", elem_id="models-refresh")
        result = gr.Markdown(elem_id="models-result")
        about = gr.Markdown(_on_pick(ctx, ids[0] if ids else None))
        api_download = gr.Button(visible=False)  # the API's download_model: a failure is an error there
        with gr.Accordion("Weights that are not on the Hub: where to get them", open=False,
                          elem_id="models-local-weights"):
            gr.Markdown(local_weights_markdown(ctx))
        metrics = metrics_markdown()
        if metrics:  # its own heading becomes the accordion's label
            title, _, body = metrics.partition("\n")
            with gr.Accordion(title.lstrip("# "), open=False, elem_id="models-demo-metrics-box"):
                gr.Markdown(body, elem_id="models-demo-metrics")

        picker.change(partial(_on_pick, ctx), picker, about, api_visibility="private", queue=False)
        refresh.click(partial(_on_list, ctx), None, table, api_name="list_models",
                      api_description="The model registry as a table: id, family, resolution, licence, size, "
                                      "whether it is cached, the state of its sha256 (cached files are hashed), "
                                      "and its sources.")
        download.click(partial(_on_download_in_page, ctx), picker, [result, table], api_visibility="private",
                       concurrency_id="download", concurrency_limit=2)
        api_download.click(partial(_on_download, ctx), picker, [result, table], api_name="download_model",
                           api_description="Download one model's weights into the Hub cache (or find its local "
                                           "file) and verify them. Returns a status line and the refreshed table.",
                           concurrency_id="download", concurrency_limit=2)
