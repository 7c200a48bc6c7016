export function intersect(a, b) {
    const x = Math.max(a.x, b.x);
    const y = Math.max(a.y, b.y);
    const width = Math.max(0, Math.min(a.x + a.width, b.x + b.width) - x);
    const height = Math.max(0, Math.min(a.y + a.height, b.y + b.height) - y);
    return { x, y, width, height };
}
/** Copies the pixels of `rect` (in the image's own coordinates) out of an image. */
export function extractRect(image, rect) {
    if (rect.x < 0 || rect.y < 0 || rect.x + rect.width > image.width || rect.y + rect.height > image.height) {
        throw new Error(`rectangle ${rect.width}x${rect.height} at ${rect.x},${rect.y} is outside the ${image.width}x${image.height} image`);
    }
    if (rect.x === 0 && rect.y === 0 && rect.width === image.width && rect.height === image.height)
        return image;
    const { channels } = image;
    const rowBytes = rect.width * channels;
    const out = Buffer.allocUnsafe(rowBytes * rect.height);
    for (let row = 0; row < rect.height; row++) {
        const start = ((rect.y + row) * image.width + rect.x) * channels;
        image.data.copy(out, row * rowBytes, start, start + rowBytes);
    }
    return { data: out, width: rect.width, height: rect.height, channels };
}
/** The inverse of extractRect: writes `piece` (same channels) into `image` with its top-left corner at x,y. */
export function pasteRect(image, piece, at) {
    const { channels } = image;
    const rowBytes = piece.width * channels;
    for (let row = 0; row < piece.height; row++) {
        piece.data.copy(image.data, ((at.y + row) * image.width + at.x) * channels, row * rowBytes, (row + 1) * rowBytes);
    }
}
//# sourceMappingURL=pixel-move.js.map