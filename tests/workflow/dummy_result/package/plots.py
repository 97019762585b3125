import pandas as pd

from experiments.report.figures import new_figure, save_figure


def values(paths, out):
    df = pd.read_csv(paths[0])
    fig, ax = new_figure(3, 2)
    ax.plot(df["i"], df["value"])
    save_figure(fig, out)
