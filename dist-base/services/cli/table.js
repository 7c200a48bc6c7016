/** Rows as a plain-text table: one header line, columns padded to their widest cell, two spaces apart. */
export function formatTable(rows, columns) {
    const cells = rows.map((row) => columns.map((column) => String(column.cell(row) ?? '—')));
    const widths = columns.map((column, index) => Math.max(column.heading.length, ...cells.map((line) => line[index].length)));
    const line = (values) => values
        .map((value, index) => (columns[index].align === 'right' ? value.padStart(widths[index]) : value.padEnd(widths[index])))
        .join('  ')
        .trimEnd();
    return [line(columns.map((column) => column.heading)), ...cells.map(line)].join('\n');
}
//# sourceMappingURL=table.js.map