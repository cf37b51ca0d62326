"""pyquirk.landscape outputs: results that save/load/plot, NPZ and HDF5 export, resumable grids, and
the tour section "The solution space: landscapes"."""
import sys

import numpy as np
import pytest

from _tol import assert_close
from conftest import require_oracle
from nets import problem
from pyquirk import landscape as ls
from pyquirk.landscape.grid import CHECKPOINT
from pyquirk.results import Result


@pytest.fixture(scope="module")
def surface():
    net, theta, X, y = problem("mlp-relu", n=12, dtype=np.float32, seed=3)
    plane = ls.random_plane(net, theta, seed=2)
    rng = np.random.default_rng(0)
    traj = theta + 0.05 * rng.standard_normal((4, net.n_params)).astype(np.float32)
    traj[-1] = theta
    return ls.evaluate_grid(net, plane, X, y, alphas=(-1.0, 1.0, 7), betas=(-1.0, 1.0, 5),
                            trajectory=traj, trajectory_steps=[0, 5, 10, 15])


def test_surface_saves_and_loads_with_its_plane_and_trajectory(surface, tmp_path):
    surface.save(tmp_path / "s")
    back = Result.load(tmp_path / "s")
    assert isinstance(back, ls.Surface) and isinstance(back.plane, ls.Plane)
    assert isinstance(back.trajectory, ls.TrajectoryOverlay)
    for name in ("alphas", "betas", "loss", "acc"):
        np.testing.assert_array_equal(getattr(back, name), getattr(surface, name))
    np.testing.assert_array_equal(back.plane.d2, surface.plane.d2)
    np.testing.assert_array_equal(back.trajectory.coords, surface.trajectory.coords)
    assert back.semantics == surface.to_dict()["semantics"] and back.plane.info["norm"] == "filter"
    assert surface.to_dict()["plane"]["kind"] == "random"


def test_npz_export_holds_the_grid_the_plane_and_the_overlay(surface, tmp_path):
    path = surface.to_npz(tmp_path / "grid.npz")
    with np.load(path, allow_pickle=False) as z:
        for key in ("alphas", "betas", "loss", "acc", "origin", "d1", "d2"):
            assert key in z.files
        np.testing.assert_array_equal(z["loss"], surface.loss)
        np.testing.assert_array_equal(z["traj_coords"], surface.trajectory.coords)
        assert "alphas[i]" in str(z["convention"])


def test_hdf5_export_reads_back(surface, tmp_path):
    h5py = require_oracle("h5py")
    path = surface.to_hdf5(tmp_path / "grid.h5")
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["loss"][:], surface.loss)
        np.testing.assert_array_equal(f["betas"][:], surface.betas)
        np.testing.assert_array_equal(f["traj_surface_loss"][:], surface.trajectory.surface_loss)
        assert f.attrs["plane_kind"] == "random"


def test_hdf5_export_without_h5py_says_what_to_install(surface, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match="needs h5py"):
        surface.to_hdf5(tmp_path / "grid.h5")


def test_figures_are_written(surface, tmp_path):
    paths = surface.save_figures(tmp_path / "figs")
    assert set(paths) == {"contour", "filled_contour", "surface_3d", "trajectory"}
    for p in paths.values():
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig = surface.plot(tmp_path / "default.png")
    assert fig.axes and (tmp_path / "default.png").stat().st_size > 0
    assert surface.plane.plot(tmp_path / "plane.png") is not None
    assert surface.trajectory.plot(tmp_path / "traj.png") is not None


def test_line_and_interpolation_figures(tmp_path):
    net, theta, X, y = problem("mlp-tanh", n=6, dtype=np.float64)
    line = ls.evaluate_grid(net, ls.Plane(theta, ls.random_direction(net, theta)), X, y,
                            alphas=(-1.0, 1.0, 5))
    assert set(line.save_figures(tmp_path / "line")) == {"curve"}
    r = ls.interpolate(net, net.init(1).astype(np.float64), theta, (X, y), labels=("init", "solution"))
    r.save(tmp_path / "interp")
    back = Result.load(tmp_path / "interp")
    np.testing.assert_array_equal(back.train_loss, r.train_loss)
    assert back.test_loss is None and back.labels == ["init", "solution"]
    assert r.plot(tmp_path / "interp.png").axes


def test_grid_resumes_tile_by_tile(tmp_path):
    net, theta, X, y = problem("cnn1d-maxpool", n=7, dtype=np.float32, seed=4)
    plane = ls.random_plane(net, theta, seed=5)
    kw = dict(alphas=(-1.0, 1.0, 5), betas=(-1.0, 1.0, 4), tile=3)
    straight = ls.evaluate_grid(net, plane, X, y, **kw)
    part = ls.evaluate_grid(net, plane, X, y, out_dir=tmp_path, max_tiles=2, **kw)
    assert not part.complete and np.isnan(part.loss).sum() == 20 - 6
    assert (tmp_path / CHECKPOINT).exists() and not (tmp_path / "result.json").exists()
    done = ls.evaluate_grid(net, plane, X, y, out_dir=tmp_path, **kw)
    assert done.complete and done.counts["points_resumed"] == 6 and done.counts["points_this_call"] == 14
    np.testing.assert_array_equal(done.loss, straight.loss)
    np.testing.assert_array_equal(done.acc, straight.acc)
    np.testing.assert_array_equal(Result.load(tmp_path).loss, straight.loss)
    again = ls.evaluate_grid(net, plane, X, y, out_dir=tmp_path, **kw)      # nothing left to do
    assert again.counts["points_this_call"] == 0
    np.testing.assert_array_equal(again.loss, straight.loss)
    with pytest.raises(ValueError, match="different grid"):
        ls.evaluate_grid(net, plane, X, y, out_dir=tmp_path, alphas=(-1.0, 1.0, 5), betas=(-2.0, 2.0, 4))


def test_tour_section_runs_small(tmp_path):
    """The section's logic on a tiny setting (the backends are tested on grids above)."""
    from pyquirk import use_backend
    from pyquirk.report import landscapes
    from pyquirk.report.tour import SectionOutput, TourContext
    from pyquirk.seeds import Seeds
    ctx = TourContext(tmp_path, True, Seeds(), show_progress=False, section="landscapes",
                      options={"steps": 40, "grid": 9, "pca_grid": 5, "subset": 200, "interp_points": 9})
    with use_backend("reference"):
        out = landscapes.landscapes_section(ctx)
    assert isinstance(out, SectionOutput) and len(out.paragraphs) == 3
    assert len(ctx.figures) == 5 and all((tmp_path / f).exists() for f in ctx.figures)
    m = out.metrics
    assert m["grid_points"] == 81 and m["grid_examples"] == 200 and m["steps"] == 40
    assert m["interp_train_loss_solution"] < m["interp_train_loss_init"]
    assert 0 < sum(m["pca_explained_variance"]) <= 1 + 1e-9
    for name in ("interpolation", "random_plane", "pca_plane"):
        assert isinstance(Result.load(tmp_path / "results" / "landscapes" / name), Result)


# ============================================================================ the tile kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("K, M", [(3, 1), (3, 511), (3, 1300), (2, 700), (3, 2 * 2048 + 5)])
def test_combine_twins_equal_and_match_einsum(dtype, K, M):
    """The coefficient product of the first-layer shortcut: Numba twin == NumPy twin bit for bit
    (same products and sums in the same order), both == einsum to the tolerance table."""
    nb = pytest.importorskip("pyquirk.landscape._numba")
    from pyquirk.landscape import _reference
    rng = np.random.default_rng(K * M)
    C = rng.uniform(-1, 1, (5, K)).astype(dtype)
    H = rng.standard_normal((K, M)).astype(dtype)
    fast, ref = nb.combine(C, H, np.empty((5, M), dtype)), _reference.combine(C, H, np.empty((5, M), dtype))
    np.testing.assert_array_equal(fast, ref)
    assert_close(ref, np.einsum("tk,km->tm", C.astype(np.float64), H.astype(np.float64)), "exact", dtype)
