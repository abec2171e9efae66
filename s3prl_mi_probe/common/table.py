"""Plain-text tables for terminals and logs."""


def format_table(rows, columns, float_digits=3):
    """Rows (dicts) as an aligned text table with the given columns."""

    def cell(value):
        if isinstance(value, float):
            return f"{value:.{float_digits}f}"
        return str(value)

    cells = [[cell(row.get(column, "")) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
    lines = ["  ".join(column.rjust(width) for column, width in zip(columns, widths))]
    lines += ["  ".join(value.rjust(width) for value, width in zip(line, widths)) for line in cells]
    return "\n".join(lines)


def markdown_table(rows, columns, float_digits=3):
    """Rows (dicts) as a Markdown pipe table with the given columns; a missing value is an empty cell."""

    def cell(value):
        if value is None:
            return ""
        if isinstance(value, float):
            return f"{value:.{float_digits}f}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(row.get(column)) for column in columns) + " |" for row in rows]
    return "\n".join(lines)
