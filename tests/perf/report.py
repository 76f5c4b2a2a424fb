"""The bench's output: one `metric=NAME ours=… python=… unit=…` line per measure, then a
table with the ratios and whether each target holds."""


def fmt(value):
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


class Report:
    def __init__(self):
        self.metrics = []  # (name, {column: value}, unit)
        self.targets = []  # (what, detail, holds)

    def metric(self, name, unit, **values):
        self.metrics.append((name, values, unit))

    def value(self, name, column):
        for metric, values, _unit in self.metrics:
            if metric == name:
                return values.get(column)
        return None

    def target(self, what, detail, holds):
        """`holds`: True, False, or None when the measure cannot decide (printed as unsure)."""
        self.targets.append((what, detail, holds))

    def print(self):
        """The metric lines, then the table."""
        for name, values, unit in self.metrics:
            fields = " ".join(f"{k}={fmt(v)}" for k, v in values.items())
            print(f"metric={name} {fields} unit={unit}")
        self.table()

    def table(self):
        rows = [("metric", "ours", "python", "builtin", "other", "unit", "ours/python")]
        for name, values, unit in self.metrics:
            ours, python = values.get("ours"), values.get("python")
            builtin = values.get("builtin")
            other = " ".join(
                f"{k}={fmt(v)}" for k, v in values.items() if k not in ("ours", "python", "builtin")
            )
            ratio = f"{ours / python:.3g}" if ours is not None and python else "-"
            rows.append((name, fmt(ours), fmt(python), fmt(builtin), other or "-", unit, ratio))
        lines = ["", "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
        lines += ["", "| target | measured | holds |", "|---|---|---|"]
        for what, detail, holds in self.targets:
            verdict = "unsure" if holds is None else "holds" if holds else "MISSES"
            lines.append(f"| {what} | {detail} | {verdict} |")
        print("\n".join(lines), flush=True)
