"""Machine description, the ratio table (Markdown), the JSON record and the PNG chart."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
from pathlib import Path
from typing import Any

import jax
import jaxlib
import optax

import gradtx


def machine() -> dict[str, Any]:
    """Where the figures came from: CPU, cores, load, memory, library versions, backend."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    with contextlib.suppress(ValueError, OSError, AttributeError):
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    device = jax.devices()[0]
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "backend": f"{device.platform} ({device.device_kind})",
        "python": platform.python_version(),
        # Flags that change what is measured (XLA options, a compilation cache directory).
        "environment": {k: v for k, v in sorted(os.environ.items()) if k.startswith(("JAX_", "XLA_"))},
        "versions": {
            "gradtx": gradtx.__version__,
            "jax": jax.__version__,
            "jaxlib": jaxlib.__version__,
            "optax": optax.__version__,
        },
    }


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def markdown(record: dict[str, Any]) -> str:
    """The tables the README shows: ratios gradtx/optax (below 1 means gradtx is faster or smaller)."""
    m = record["machine"]
    lines = [
        f"Measured {m['date_utc']} UTC on {m['cpu']} ({m['cores']} cores, {m['backend']}), "
        f"load average {', '.join(f'{x:.1f}' for x in m['load_average'] or [])}; "
        f"jax {m['versions']['jax']}, optax {m['versions']['optax']}. "
        f"Copy bandwidth {record['copy_bandwidth_gbs']:.1f} GB/s.",
        "",
    ]
    # Older records have no nominal bandwidth.
    peak = record.get("peak_bandwidth_gbs")
    if record["big_leaf"]:
        if peak:
            lines += [
                f'The floor is the single-pass traffic over the copy bandwidth measured; "of peak" over the '
                f"nominal {peak:.0f} GB/s given with `--peak-gbs`.",
                "",
            ]
        extra = " gradtx of peak | optax of peak |" if peak else ""
        lines += [
            "| one large leaf | params | gradtx ms | optax ms | ratio | gradtx floor | optax floor |" + extra,
            "|---|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if peak else ""),
        ]
        for r in record["big_leaf"]:
            step, floor = r["step_s"], r["floor_fraction"]
            cells = [r["case"], f"{r['n_params'] / 1e6:.1f}M", _ms(step["gradtx"]), _ms(step["optax"])]
            cells += [f"{r['ratio']:.2f}", f"{floor['gradtx']:.2f}", f"{floor['optax']:.2f}"]
            if peak:
                cells += [f"{r['peak_fraction']['gradtx']:.2f}", f"{r['peak_fraction']['optax']:.2f}"]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    if record["trees"]:
        lines += [
            "Many leaves, ratios gradtx/optax. Trace and compile are process CPU time (the wall time of a loaded",
            "machine mostly measures the wait for a core); the seconds are gradtx's and optax's trace+compile.",
            "The floor is the bare step `p - lr * g` on the same leaves over optax's (trace+compile, step): no",
            "optimizer that writes these leaves one by one can go below it.",
            "",
            "| many leaves | leaves | trace | compile | trace+compile | step | HLO instr. | peak memory | floor |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in record["trees"]:
            q, g, o = r["ratio"], r["gradtx"], r["optax"]
            seconds = f"{g['trace_compile_cpu_s']:.1f} s vs {o['trace_compile_cpu_s']:.1f} s"
            lines.append(
                f"| {r['tree']}, {r['optimizer']} | {r['n_leaves']} "
                f"| {q['trace_cpu_s']:.2f} | {q['compile_cpu_s']:.2f} "
                f"| {q['trace_compile_cpu_s']:.2f} ({seconds}) "
                f"| {q['step_s']:.2f} | {q['hlo_instructions']:.2f} | {q['peak_bytes']:.2f} "
                f"| {r['floor_ratio']['trace_compile_cpu_s']:.2f}, {r['floor_ratio']['step_s']:.2f} |"
            )
        lines.append("")
    if record["state"]:
        lines += ["| optimizer state | gradtx B/param | optax B/param | note |", "|---|---:|---:|---|"]
        for r in record["state"]:
            b = r["bytes_per_param"]
            lines.append(f"| {r['case']} | {b['gradtx']:.2f} | {b['optax']:.2f} | {r['note']} |")
        lines.append("")
    return "\n".join(lines)


def write(record: dict[str, Any], out_dir: Path, stem: str) -> tuple[Path, ...]:
    """Writes ``<stem>.json``, ``<stem>.md`` and ``<stem>.png`` into ``out_dir``.

    Without matplotlib (a bare GPU image: it is only in the ``plot`` extra) the chart is skipped,
    not the figures.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path, png_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md", out_dir / f"{stem}.png"
    json_path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    md_path.write_text(markdown(record))
    try:
        chart(record, png_path)
    except ImportError as error:
        print(f"no chart ({error}); pip install matplotlib for {png_path.name}", flush=True)
        return json_path, md_path
    return json_path, md_path, png_path


def chart(record: dict[str, Any], path: Path) -> None:
    """Two panels of ratios gradtx/optax (lower is better), with the 1.0 line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    big = record["big_leaf"]
    ax = axes[0]
    if big:
        names = [r["case"] for r in big]
        xs = range(len(names))
        ax.bar([x - 0.2 for x in xs], [r["ratio"] for r in big], width=0.4, label="step time gradtx/optax")
        floor = [r["floor_fraction"]["gradtx"] for r in big]
        ax.bar([x + 0.2 for x in xs], floor, width=0.4, label="gradtx fraction of floor")
        ax.set_xticks(list(xs), names, rotation=30, ha="right")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_title("one large leaf")
    ax.legend(fontsize=8)
    ax = axes[1]
    trees = record["trees"]
    if trees:
        metrics = {
            "trace_cpu_s": "trace (CPU)",
            "compile_cpu_s": "compile (CPU)",
            "trace_compile_cpu_s": "trace+compile (CPU)",
            "step_s": "step",
        }
        width = 0.8 / len(metrics)
        for j, (key, label) in enumerate(metrics.items()):
            xs = [i + (j - 1.5) * width for i in range(len(trees))]
            ax.bar(xs, [r["ratio"][key] for r in trees], width=width, label=label)
        ax.set_xticks(list(range(len(trees))), [f"{r['tree']}\n{r['optimizer']}" for r in trees], fontsize=8)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_title("many leaves: gradtx/optax (lower is better)")
    ax.legend(fontsize=8)
    m = record["machine"]
    title = f"gradtx vs optax {m['versions']['optax']} - {m['cpu']}, {m['cores']} cores, {m['date_utc']} UTC"
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=90)
    plt.close(fig)
