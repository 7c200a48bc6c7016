import { colourChannels, colourCopy, paint } from '../draw.js';
import { defineOperation } from '../operation.js';
import { canny, edges } from './edges.js';
import { greyChannel } from './grayscale.js';
const GREEN = [0, 255, 0];
/** Marks as in OpenCV's scanner: traced pixels become TRACED, or RIGHT_BORDER where background lies to their right. */
const TRACED = 2;
const RIGHT_BORDER = -126;
/** Neighbour steps in OpenCV's chain-code order: right, up-right, up, up-left, left, down-left, down, down-right. */
const STEP_X = [1, 1, 0, -1, -1, -1, 0, 1];
const STEP_Y = [0, -1, -1, -1, 0, 1, 1, 1];
/**
 * Outer contours of the non-zero pixels of a one-channel image, as OpenCV's findContours with
 * RETR_EXTERNAL and CHAIN_APPROX_NONE finds them (Suzuki-Abe border following on a zero-padded copy,
 * skipping borders that lie inside an already traced component). Returns each contour's points.
 */
export function findOuterContours(binary) {
    if (binary.channels !== 1)
        throw new Error(`contours need one channel, got ${binary.channels}`);
    const width = binary.width + 2;
    const height = binary.height + 2;
    const marks = new Int8Array(width * height);
    for (let y = 0; y < binary.height; y++) {
        for (let x = 0; x < binary.width; x++)
            marks[(y + 1) * width + x + 1] = binary.data[y * binary.width + x] ? 1 : 0;
    }
    const steps = STEP_X.map((dx, s) => STEP_Y[s] * width + dx);
    const contours = [];
    for (let y = 1; y < height - 1; y++) {
        let previous = 0;
        let lastBorder = y * width; // the padding pixel at the row start: background
        for (let x = 1; x < width - 1; x++) {
            const at = y * width + x;
            const value = marks[at];
            if (value === previous)
                continue;
            if (previous === 0 && value === 1 && marks[lastBorder] <= 0) {
                contours.push(followBorder(marks, at, x, y, steps));
                previous = marks[at];
                lastBorder = at;
                continue;
            }
            if (value === 0 && previous >= 1 && (previous & -2) !== 0)
                lastBorder = at - 1;
            previous = value;
            if ((value & -2) !== 0)
                lastBorder = at;
        }
    }
    return contours;
}
/** Suzuki-Abe outer border following from `start` (OpenCV's icvFetchContour); marks the border. */
function followBorder(marks, start, x, y, steps) {
    const points = [];
    let point = { x: x - 1, y: y - 1 };
    let direction = 4;
    let first = start;
    do {
        direction = (direction - 1) & 7;
        first = start + steps[direction];
    } while (marks[first] === 0 && direction !== 4);
    if (direction === 4) {
        marks[start] = RIGHT_BORDER;
        return [point];
    }
    let current = start;
    for (;;) {
        const searchEnd = direction;
        let next = current;
        let s = direction;
        while (s < 15) {
            s++;
            next = current + steps[s & 7];
            if (marks[next] !== 0)
                break;
        }
        direction = s & 7;
        if (direction >= 1 && direction - 1 < searchEnd)
            marks[current] = RIGHT_BORDER;
        else if (marks[current] === 1)
            marks[current] = TRACED;
        points.push(point);
        point = { x: point.x + STEP_X[direction], y: point.y + STEP_Y[direction] };
        if (next === start && current === first)
            return points;
        current = next;
        direction = (direction + 4) & 7;
    }
}
export const contours = defineOperation({
    name: 'contours',
    description: 'Draws in green, 1 pixel wide, the outer contours (OpenCV findContours RETR_EXTERNAL) of the Canny edges ' +
        '(low/high as for edges); grey images become RGB.',
    params: edges.params,
    tiling: { kind: 'whole', reason: 'contours are traced across the whole edge map' },
    outputChannels: colourChannels,
    apply: async (image, { low, high }) => {
        const edgeMap = canny(greyChannel(image), low, high);
        const marked = colourCopy(image);
        for (const contour of findOuterContours(edgeMap)) {
            for (const { x, y } of contour)
                paint(marked, x, y, GREEN);
        }
        return marked;
    },
});
//# sourceMappingURL=contours.js.map