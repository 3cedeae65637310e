"""The report's pictures (matplotlib, Agg: no display needed): pass@k with bands, response lengths, run differences.

    pass_at_k(series, path)    # one panel per dataset: pass@k against k, a 95% band per row
    lengths(panels, path)      # one panel per task: response lengths, correct / wrong / cut at max_tokens
    differences(panels, path)  # one panel per dataset: B - A of each metric with its 95% interval

Called by reasonlite/evaluation/report.py, which computes every number; this module only draws.
"""


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")  # servers and CI have no display
    import matplotlib.pyplot as plt
    return plt


def _grid(plt, count, width=5.0, height=4.0, cols_max=4):
    cols = min(count, cols_max)
    rows = (count + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[count:]:
        ax.axis("off")
    return fig, flat[:count]


def pass_at_k(series, path):
    """series: {dataset: [(row label, ks, points, lows or None, highs or None)]} in [0, 1]; saved as a PNG."""
    plt = _pyplot()
    fig, axes = _grid(plt, len(series))
    for ax, (dataset, lines) in zip(axes, series.items()):
        for label, ks, ys, lo, hi in lines:
            line, = ax.plot(ks, [y * 100 for y in ys], marker="o", label=label)
            if lo is not None:
                ax.fill_between(ks, [v * 100 for v in lo], [v * 100 for v in hi], color=line.get_color(), alpha=0.2)
        ax.set_xscale("log", base=2)
        ax.set_title(dataset)
        ax.set_xlabel("k")
        ax.set_ylabel("pass@k (%), 95% band")
        ax.set_ylim(-2, 102)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


OUTCOME_COLORS = {"correct": "tab:green", "wrong": "tab:red", "cut at max_tokens": "tab:gray"}


def lengths(panels, path):
    """panels: [(title, {"correct": [tokens], "wrong": [...], "cut at max_tokens": [...]})]; stacked histograms."""
    plt = _pyplot()
    fig, axes = _grid(plt, len(panels))
    for ax, (title, groups) in zip(axes, panels):
        values = [v for vs in groups.values() for v in vs]
        if not values:
            ax.set_title(f"{title}\n(no token counts recorded)", fontsize=9)
            continue
        bins = min(40, max(5, len(set(values))))
        names = [g for g in OUTCOME_COLORS if groups.get(g)]
        ax.hist([groups[g] for g in names], bins=bins, stacked=True, color=[OUTCOME_COLORS[g] for g in names],
                label=[f"{g} ({len(groups[g])})" for g in names])
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("response length (tokens)")
        ax.set_ylabel("samples")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def differences(panels, path):
    """panels: [(title, [(metric, diff, lo, hi)])] in [-1, 1]; a point and interval per metric, a line at zero."""
    plt = _pyplot()
    fig, axes = _grid(plt, len(panels), width=5.5, height=0.5 + 0.45 * max(len(r) for _, r in panels))
    for ax, (title, rows) in zip(axes, panels):
        ys = list(range(len(rows)))[::-1]
        for y, (metric, d, lo, hi) in zip(ys, rows):
            color = "tab:green" if lo > 0 else "tab:red" if hi < 0 else "tab:blue"
            ax.errorbar([d * 100], [y], xerr=[[(d - lo) * 100], [(hi - d) * 100]], fmt="o", color=color, capsize=3)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_yticks(ys)
        ax.set_yticklabels([r[0] for r in rows])
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("B - A (points), 95% interval")
        ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
