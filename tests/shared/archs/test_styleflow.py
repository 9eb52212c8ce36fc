"""StyleFlow's conditional CNF prior against the official outputs in ../shared/parity
(`styleflow_cnf64`: random weights, official solver settings) and its float64 tight-tolerance
reference solutions; loading the official state-dict layout."""
from __future__ import annotations

import pytest
import torch

from shared.archs.styleflow import StyleFlow, dopri5, load_styleflow, styleflow_from_state_dict
from shared.errors import CheckpointError
from tests.parity import require

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def vec(parity_dir) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file
    return load_file(str(require(parity_dir / "styleflow_cnf64.safetensors")))


@pytest.fixture(scope="module")
def flow(vec) -> StyleFlow:
    return styleflow_from_state_dict({k[3:]: v for k, v in vec.items() if k.startswith("sd.")})


def tol(expected: torch.Tensor) -> float:
    """The file's tolerance for a correct adaptive solver that is not a bit-exact torchdiffeq 0.0.1."""
    return 1e-3 + 1e-4 * float(expected.abs().max())


@pytest.mark.parametrize("case, reference", [("a.z", "f.z_ref"), ("b.w", "f.w_ref"), ("c.w_edit", "f.w_edit_ref"),
                                             ("e.z", "f.e_z_ref")])
def test_styleflow_matches_the_official_prior(flow, vec, case, reference):
    if case == "a.z":
        out = flow(vec["a.w"], vec["a.cond"])
    elif case == "b.w":
        out = flow.reverse(vec["a.z"], vec["a.cond"])
    elif case == "c.w_edit":
        out = flow.reverse(vec["a.z"], vec["c.cond_target"])
    else:
        out = flow(vec["e.w"], vec["e.cond"])
    for key in (case, reference):
        diff = float((out - vec[key]).abs().max())
        assert diff <= tol(vec[key]), (key, diff, tol(vec[key]))


def test_forward_reverse_round_trip_and_edit(flow, vec):
    w = vec["a.w"]
    back = flow.reverse(flow(w, vec["a.cond"]), vec["a.cond"])
    assert float((back - w).abs().max()) < 2e-3
    edited = flow.edit(w, vec["a.cond"], vec["c.cond_target"])
    assert float((edited - w).abs().max()) > 1.0  # an Age change moves the latent


def test_state_dict_layout_and_loading(flow, vec, tmp_path):
    names = [k[3:] for k in vec if k.startswith("sd.")]
    assert sorted(flow.state_dict()) == sorted(names)
    assert StyleFlow().hidden == (512,) * 5 and StyleFlow().context_dim == 17  # cnf(512, '512-512-512-512-512', 17, 1)
    path = tmp_path / "modellarge10k.pt"
    torch.save({k: v for k, v in flow.state_dict().items()}, path)
    again = load_styleflow(path)
    assert torch.equal(again(vec["a.w"], vec["a.cond"]), flow(vec["a.w"], vec["a.cond"]))
    with pytest.raises(CheckpointError, match="not a StyleFlow prior"):
        styleflow_from_state_dict({"weight": torch.zeros(1)})
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError):
        load_styleflow(tmp_path / "junk.pt")
    with pytest.raises(ValueError, match=r"condition must be \[1, 17\]"):
        flow(vec["a.w"], torch.zeros(1, 5))


def test_dopri5_on_known_solutions():
    y, nfe = dopri5(lambda t, y: -2.0 * y, torch.tensor([1.0, 3.0], dtype=torch.float64), 0.0, 1.5)
    assert torch.allclose(y, torch.tensor([1.0, 3.0], dtype=torch.float64) * torch.exp(torch.tensor(-3.0)), rtol=1e-4)
    back, _ = dopri5(lambda t, y: -2.0 * y, y, 1.5, 0.0)  # reverse in time
    assert torch.allclose(back, torch.tensor([1.0, 3.0], dtype=torch.float64), rtol=1e-4)
    y, _ = dopri5(lambda t, y: torch.cos(torch.full_like(y, t)), torch.zeros(1, dtype=torch.float64), 0.0, 2.0,
                  atol=1e-9, rtol=1e-9)
    assert abs(float(y) - torch.sin(torch.tensor(2.0)).item()) < 1e-7
    assert nfe > 0
