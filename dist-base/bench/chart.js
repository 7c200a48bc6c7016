const barHeight = 18;
const rowHeight = 70;
const labelWidth = 330;
const plotWidth = 420;
const escape = (text) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;');
export function chart(rows) {
    const longest = Math.max(...rows.flatMap((row) => [row.plain, row.dips]));
    const scale = plotWidth / longest;
    const height = 40 + rows.length * rowHeight;
    const width = labelWidth + plotWidth + 140;
    const parts = [
        `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
        `<rect width="100%" height="100%" fill="white"/>`,
        `<text x="10" y="20" font-size="14" font-weight="bold">Wall time per batch (s), plain sharp vs DIPS; master CPU per image</text>`,
        `<rect x="${labelWidth}" y="28" width="10" height="10" fill="#888"/><text x="${labelWidth + 14}" y="37">plain sharp</text>`,
        `<rect x="${labelWidth + 100}" y="28" width="10" height="10" fill="#2a7ab9"/><text x="${labelWidth + 114}" y="37">DIPS</text>`,
    ];
    rows.forEach((row, index) => {
        const y = 50 + index * rowHeight;
        parts.push(`<text x="10" y="${y + 14}" font-weight="bold">${escape(row.label)}</text>`, `<text x="10" y="${y + 30}">${escape(row.sub)}</text>`, `<rect x="${labelWidth}" y="${y}" width="${(row.plain * scale).toFixed(1)}" height="${barHeight}" fill="#888"/>`, `<text x="${labelWidth + row.plain * scale + 4}" y="${y + 13}">${row.plain.toFixed(2)} s</text>`, `<rect x="${labelWidth}" y="${y + barHeight + 4}" width="${(row.dips * scale).toFixed(1)}" height="${barHeight}" fill="#2a7ab9"/>`, `<text x="${labelWidth + row.dips * scale + 4}" y="${y + barHeight + 17}">${row.dips.toFixed(2)} s · master ${row.masterMs.toFixed(2)} ms/image</text>`);
    });
    parts.push('</svg>');
    return `${parts.join('\n')}\n`;
}
//# sourceMappingURL=chart.js.map