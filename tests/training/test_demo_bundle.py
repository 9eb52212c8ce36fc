"""The shipped demo-world bundle (shared/demo/bundle/): manifest hashes, registry agreement, the
generator's documented metrics reproduced from the files, the encoder's reconstruction figure,
the directions doing what their names say, and the evaluation's building blocks on known inputs."""
import json

import pytest
import torch

from shared import load_generator, registry
from shared.hub import file_sha256
from shared.demo.bundle import BUNDLE_DIR, example_portraits, load_demo_directions, load_manifest, verify_bundle
from training.demo.evaluate import (TV_TARGET, W1_TARGET, _shuffled, _tv, _w1, evaluate_generator, frechet_distance,
                                  plausible_parts)
from shared.demo.factor_latents import Z_DIM
from shared.demo.predictor import load_predictor
from shared.portraits import FACTORS, captions, render, render_seeds, sample_factors
from training.demo import build


@pytest.fixture(scope="module")
def manifest():
    return load_manifest()


@pytest.fixture(scope="module")
def G():
    return load_generator(BUNDLE_DIR / "generator.safetensors")


@pytest.fixture(scope="module")
def predictor():
    return load_predictor()


# ---- manifest and registry ----------------------------------------------------------------------
def test_manifest_hashes_match_the_files(manifest):
    assert verify_bundle() == []
    on_disk = {p.name for p in BUNDLE_DIR.iterdir() if p.name != "manifest.json"}
    assert set(manifest["files"]) == on_disk
    assert manifest["total_bytes"] == sum(f["bytes"] for f in manifest["files"].values()) <= 40_000_000
    assert {"python", "torch", "open_clip", "code_commit"} <= set(manifest["versions"])
    for name in ("generator", "encoder", "predictor", "clip"):
        assert manifest["training"].get(name), f"no training record for {name}"


@pytest.mark.parametrize("model_id, file", [(registry.DEFAULT_GENERATOR_ID, "generator.safetensors"),
                                            ("demo-portraits-e4e-64", "encoder.safetensors"),
                                            ("demo-portraits-clip", "clip.safetensors"),
                                            ("demo-portraits-styleflow", "flow.safetensors"),
                                            ("demo-portraits-predictor", "predictor.safetensors"),
                                            ("demo-portraits-directions", "directions.safetensors"),
                                            ("demo-portraits-mapper-glasses", "mapper_glasses.safetensors"),
                                            ("demo-portraits-mapper-blonde-hair", "mapper_blonde_hair.safetensors")])
def test_registry_records_pin_the_shipped_files(manifest, model_id, file):
    card = registry.get(model_id)
    assert card.sha256 == manifest["files"][file]["sha256"] and card.size == manifest["files"][file]["bytes"]


def test_models_tab_summary_shows_the_generator_against_its_targets(manifest):
    from shared.demo.bundle import metrics_markdown
    text = metrics_markdown()
    g = manifest["metrics"]["generator"]
    assert f"| {g['max_tv']:.3f} | ≤ {g['tv_target']:.2f} |" in text
    assert f"{g['fidelity']['psnr_db']:.1f} dB / {g['fidelity']['parts_miou']:.2f}" in text
    assert f"| {g['max_w1_of_range']:.3f} | ≤ {g['w1_target']:.2f} |" in text


def test_default_generator_is_the_bundle_and_loads_as_recorded(G):
    card = registry.get(registry.DEFAULT_GENERATOR_ID)
    assert not card.untrained and (G.img_resolution, G.num_ws, G.w_dim) == (64, 10, 128)
    from shared.archs.stylegan2 import StyleGAN2Config
    assert G.config == StyleGAN2Config.from_dict(card.arch_config)
    assert all(p.dtype == torch.float32 for p in G.parameters())  # stored float16, computed float32


# ---- evaluation building blocks -------------------------------------------------------------------
def test_distribution_distances_on_known_inputs():
    a = torch.tensor([0, 0, 1, 1])
    assert _tv(a, a, 3) == 0 and _tv(a, torch.tensor([2, 2, 2, 2]), 3) == 1.0
    assert _tv(a, torch.tensor([0, 1, 1, 1]), 3) == pytest.approx(0.25)
    x = torch.linspace(0, 1, 500)
    assert _w1(x, x + 0.3) == pytest.approx(0.3, abs=1e-6)
    f = torch.randn(400, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert abs(frechet_distance(f, f)) < 1e-6
    shift = frechet_distance(f, f + 2.0)   # same covariance: |mu_a - mu_b|^2 = 8 * 4
    assert shift == pytest.approx(32.0, rel=1e-6)


def test_plausible_parts_accepts_renders_and_rejects_shuffles():
    r = render(sample_factors(60, 123))
    assert plausible_parts(r.parts).double().mean() >= 0.95
    shuffled = _shuffled(r.parts[:, None].float(), torch.Generator().manual_seed(0))[:, 0].long()
    assert plausible_parts(shuffled).double().mean() == 0


# ---- the generator's documented metrics ------------------------------------------------------------
@pytest.fixture(scope="module")
def report(G, predictor):
    torch.set_num_threads(2)
    ev = json.loads((BUNDLE_DIR / "evaluation.json").read_text())
    return ev, evaluate_generator(G, predictor, n=ev["n"], psi=ev["psi"], mixing_n=200)


@pytest.mark.slow
def test_generator_reproduces_its_recorded_metrics(report):
    recorded, now = report
    for name, rec in recorded["factors"].items():
        if rec["kind"] == "categorical":
            assert now["factors"][name]["tv"] == pytest.approx(rec["tv"], abs=0.01), name
        else:
            assert now["factors"][name]["w1_of_range"] == pytest.approx(rec["w1_of_range"], abs=0.01), name
    for key, value in recorded["frechet"].items():
        assert now["frechet"][key] == pytest.approx(value, rel=0.02), key
    for key, value in recorded["plausible_parts"].items():
        assert now["plausible_parts"][key] == pytest.approx(value, abs=0.01), key


@pytest.mark.slow
def test_generator_beats_both_baselines_by_far(report):
    _, now = report
    f = now["frechet"]
    assert f["generator"] < 0.25 * f["shuffled_renders"] and f["generator"] < 0.05 * f["untrained_generator"]
    assert f["renders_vs_renders"] < f["generator"]        # the noise floor is below everything
    assert now["plausible_parts"]["renders"] >= 0.95
    assert now["plausible_parts"]["generator"] >= 0.95     # issue 16's target: faces with parts in place


@pytest.mark.slow
def test_style_mixing_coarse_rows_carry_pose_and_face_shape(report):
    _, now = report
    coarse = now["mixing"]["coarse"]["factors"]
    for name in ("yaw", "face_width"):
        assert coarse[name]["source"] > coarse[name]["destination"], (name, coarse[name])
    fine = now["mixing"]["fine"]["factors"]
    assert fine["yaw"]["destination"] > fine["yaw"]["source"]  # fine rows leave the pose alone


@pytest.mark.slow
def test_generator_meets_the_distribution_targets(report):
    _, now = report
    tv = {k: v["tv"] for k, v in now["factors"].items() if v["kind"] == "categorical"}
    w1 = {k: v["w1_of_range"] for k, v in now["factors"].items() if v["kind"] == "continuous"}
    assert now["max_tv"] == max(tv.values()) and now["max_w1_of_range"] == max(w1.values())
    missed = {k: round(v, 3) for k, v in tv.items() if v > TV_TARGET} | {k: round(v, 3) for k, v in w1.items()
                                                                        if v > W1_TARGET}
    # the large factors are met; the few-pixel ones (glasses frames, iris colour, brows, the mouth's curve)
    # are not yet drawn crisply by the distilled generator (issue 16's note)
    assert set(missed) <= {"eye_color", "glasses", "glasses_color", "eye_size", "brow_thickness", "smile"}, missed
    if missed:
        pytest.xfail(f"demo generator misses the distribution targets on small features: {missed}")


# ---- encoder ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_encoder_reconstruction_psnr_matches_the_manifest(G, manifest):
    recorded = manifest["metrics"]["encoder"]
    now = build.encoder_metrics(G, n=recorded["n"])["encoder"]
    assert now["psnr_samples_db"] == pytest.approx(recorded["psnr_samples_db"], abs=0.1)
    assert now["psnr_renders_db"] == pytest.approx(recorded["psnr_renders_db"], abs=0.1)
    assert now["psnr_samples_db"] > 18 and now["psnr_renders_db"] > 15   # reconstructions, not guesses
    if now["psnr_samples_db"] < recorded["target_db"]:
        pytest.xfail(f"encoder PSNR {now['psnr_samples_db']:.1f} dB < {recorded['target_db']} dB target")


# ---- directions ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def directions():
    return load_demo_directions()


def test_directions_cover_every_factor_and_are_unit_vectors(directions):
    from shared.portraits import FACTORS
    names = set(directions.names())
    for s in FACTORS:
        if s.kind == "continuous":
            assert s.name in names
        else:
            assert {f"{s.name}={c}" for c in s.categories} <= names
    for n in names:
        assert directions[n].vector.shape == (128,) and directions[n].vector.norm() == pytest.approx(1, abs=1e-4)
        assert directions[n].slope > 0


def test_key_directions_are_followed(directions):
    for name in ("yaw", "skin_tone", "hair_color=blonde", "glasses=none", "beard=beard"):
        assert directions[name].slope > 0, name


@pytest.mark.slow
def test_every_followed_direction_moves_its_factor_as_claimed(G, predictor, directions):
    """For every direction with a positive measured slope: w +/- the step that claims a change of a
    quarter of the factor's range (classes: 0.2 probability), on 48 held-out latents (not the
    calibration ones), judged by the predictor: the factor moves the claimed way by at least a third
    of the claim. A direction the generator does not follow has slope <= 0 and refuses to step."""
    from shared.portraits import FACTORS
    ws = G.mapping(torch.randn([48, G.z_dim], generator=torch.Generator().manual_seed(4242)))
    failures, followed = [], 0
    for name in directions.names():
        factor, _, cls = name.partition("=")
        spec = next(s for s in FACTORS if s.name == factor)
        if directions[name].slope <= 0:
            with pytest.raises(ValueError, match="does not follow"):
                directions.step_for(name, 0.1)
            continue
        followed += 1
        ask = 0.25 * (spec.high - spec.low) if spec.kind == "continuous" else 0.2
        step = directions.step_for(name, ask)

        def read(w):
            p = predictor.predict(G.synthesis(w, noise_mode="const"))
            return p.probs[factor][:, spec.categories.index(cls)] if cls else p.factors[factor].float()

        with torch.no_grad():
            change = float((read(ws + step) - read(ws - step)).mean()) / 2
        if change < ask / 3:
            failures.append((name, round(change, 4), ask))
    # Known misses of the v2 (distilled) generator, in issue 16's note: the predictor does not read the
    # generator's smile back (R^2 -0.12 on G(z)), so the smile slope measured at build time is noise and
    # goes the other way here (-0.15 of a 0.5 claim); brown and grey hair are the two classes whose W
    # directions mostly turn hair into the neighbouring colour (InterFaceGAN success 0.47 / 0.41).
    known = {"smile", "hair_color=brown", "hair_color=grey"}
    assert followed >= 25 and {name for name, *_ in failures} <= known, failures


# ---- examples ---------------------------------------------------------------------------------------
def test_example_portraits_are_renders_with_their_captions(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)
    out = example_portraits((3, 7), size=64)
    import numpy as np
    from PIL import Image
    r = render_seeds([3, 7], 64)
    for (path, caption), img, cap in zip(out, (r.img + 1) * 127.5, captions(r.factors)):
        assert path.startswith(str(tmp_path)) and caption.endswith(cap)
        saved = np.asarray(Image.open(path)).astype(float)
        assert np.abs(saved - img.permute(1, 2, 0).numpy()).max() <= 1.0


# ---- the one command -------------------------------------------------------------------------------
def test_build_seconds_override_is_checked():
    for bad in ("bogus=3", "sharpen=soon", "sharpen"):
        with pytest.raises(SystemExit):
            build.main(["--only", "manifest", "--seconds", bad])


@pytest.mark.slow
def test_build_command_runs_every_stage_and_resumes(tmp_path):
    """`python -m training.demo.build` end to end with seconds-long budgets (preset smoke): every file,
    a manifest whose hashes match, grids; a second run finds everything and trains nothing."""
    args = ["--preset", "smoke", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out"),
            "--docs", str(tmp_path / "docs"), "--extras", str(tmp_path / "extras"), "--eval-n", "40", "--threads", "2"]
    build.main(args)
    out = tmp_path / "out"
    names = {p.name for p in out.iterdir()}
    assert set(build.FILES.values()) <= names
    manifest = json.loads((out / "manifest.json").read_text())
    for name, rec in manifest["files"].items():
        assert file_sha256(out / name) == rec["sha256"]
    assert {"generator", "encoder", "predictor", "clip", "flow", "mapper_glasses", "mapper_blonde_hair"} <= \
        set(manifest["training"])
    assert (tmp_path / "docs" / "demo_samples.png").is_file() and (tmp_path / "docs" / "demo_style_mixing.png").is_file()
    # the CPU presets distil the renderer (stage 1) and sharpen it (stage 2): a factor-coordinate generator
    gen_log = json.loads((out / "generator.json").read_text())["training"]
    assert gen_log["recipe"] == "distill" and gen_log["distill"]["steps"] >= 1 and gen_log["sharpen"]["steps"] >= 1
    G = load_generator(out / "generator.safetensors")
    assert G.z_dim == Z_DIM and len(G.config.z_onehot) == sum(s.kind == "categorical" for s in FACTORS)
    # distilled generators are judged against the renderer too: fidelity figures and the side-by-side grid
    fidelity = json.loads((out / "evaluation.json").read_text())["fidelity"]
    assert {"psnr_db", "parts_miou", "feature_fd", "categorical_agreement", "continuous_r2"} <= set(fidelity)
    assert (tmp_path / "docs" / "demo_side_by_side.png").is_file()
    # the derived assets the tabs read: flow, mappers (measured by the predictor), channel table, relevance matrix
    for r in build.MAPPERS:
        side = json.loads((out / f"mapper_{r.name}.json").read_text())
        assert side["prompt"] == r.prompt and side["measured"]["target"] and side["training"]["steps_done"] == 2
    assert json.loads((out / "flow.json").read_text())["training"]["config"]["steps"] == 2
    extras = tmp_path / "extras"
    assert set(json.loads((extras / "stylespace_channels.json").read_text())["factors"]) >= {"yaw", "smile"}
    from safetensors import safe_open
    rel = build._outputs(build.Job(runs=tmp_path, out=out, extras=extras), "relevance")[0]
    with safe_open(str(rel), "pt") as fh:
        assert fh.metadata()["generator_sha256"] == file_sha256(out / "generator.safetensors")
        assert fh.get_tensor("matrix").shape[0] == 16          # smoke: the first 16 channels only
    files = [*out.iterdir(), *extras.rglob("*.*")]
    before = {str(p): p.stat().st_mtime_ns for p in files if p.name != "manifest.json"}
    build.main(args)                                    # resumed: nothing is redone
    assert before == {str(p): p.stat().st_mtime_ns for p in files if p.name != "manifest.json"}
