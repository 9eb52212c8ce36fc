"""Our `spaces/` package shares its import name with Hugging Face's `spaces` (ZeroGPU), which
Gradio imports and calls on a Space; the app must still build there."""
import os
import subprocess
import sys


def test_hf_spaces_api_is_re_exported():
    import spaces
    assert callable(spaces.gradio_auto_wrap) and callable(spaces.GPU)
    import spaces.generate.tab  # and it is still our tab package
    assert hasattr(spaces.generate.tab, "build_tab")
    if "_hf_spaces" in sys.modules:
        assert spaces.GPU is sys.modules["_hf_spaces"].GPU

    @spaces.GPU(duration=10)
    def f(x):
        return x + 1
    assert f(1) == 2  # a no-op outside ZeroGPU


def test_app_builds_as_a_space(repo_root):
    code = ("import app; from shared.context import create_context; d = app.build_demo(create_context()); "
            "print('fns', len(d.fns))")
    env = {**os.environ, "SPACE_ID": "stylegan-hub/test", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    r = subprocess.run([sys.executable, "-c", code], cwd=repo_root, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "fns" in r.stdout
