import matplotlib
import numpy as np
import pytest

from asdtheory import plots

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def test_plot_vs_condition_draws_the_seed_means_and_ranges():
    values = np.random.default_rng(0).uniform(size=(2, 3, 4))
    fig, ax = plt.subplots()
    plots.plot_vs_condition(ax, values, conditions=["clean", "0", "-5"], methods=["a", "b"],
                            ylabel="AUC")
    for line, v in zip(ax.get_lines(), values, strict=True):
        np.testing.assert_allclose(line.get_ydata(), v.mean(axis=-1))
    for band, v in zip(ax.collections, values, strict=True):
        ys = band.get_paths()[0].vertices[:, 1]
        assert ys.min() == pytest.approx(v.min()) and ys.max() == pytest.approx(v.max())
    with pytest.raises(ValueError, match="methods, conditions, seeds"):
        plots.plot_vs_condition(ax, values, conditions=["clean"], methods=["a", "b"],
                                ylabel="AUC")
    plt.close(fig)


def test_every_method_of_the_notebooks_figures_has_its_own_colour():
    from asdtheory.experiments import bvalve, c4, c5, c6

    methods = {*c4.METHODS, *c5.METHODS, *c6.METHODS, *bvalve.METHODS}
    assert methods <= set(plots.COLOURS), sorted(methods - set(plots.COLOURS))
    assert len(set(plots.COLOURS.values())) == len(plots.COLOURS)
